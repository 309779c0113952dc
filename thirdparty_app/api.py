"""The JSON API (``/api/...``, described by ``/api/openapi.json``) and exports per usage point
(CSV, JSON, Green Button XML) for a date range. Both answer a signed-in browser or an API key
(``Authorization: Bearer KEY``) with that account's data only (an operator's: everyone's)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, request

import espi
from appkit.http import http_problem
from espi import export

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
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def buckets(up: espi.UsagePoint, aggregate: str, zone: Any) -> Iterator[dict[str, Any]]:
    """Per meter reading, its readings or their sums per local hour, day or month."""
    for mr in up.meter_readings:
        rt = mr.reading_type
        scale = rt.scale if rt else 1.0
        points: list[dict[str, Any]] = []
        current: dict[str, Any] | None = None
        key = None
        for r in mr.readings():
            start = r.start or 0
            if aggregate == "none":
                points.append(
                    {
                        "start": iso(start),
                        "duration": r.duration,
                        "value": (r.value or 0) * scale,
                        "cost": None if r.cost is None else r.cost / espi.model.COST_SCALE,
                    }
                )
                continue
            local = datetime.fromtimestamp(start, zone)
            k = (
                local.year,
                local.month,
                local.day if aggregate != "month" else 1,
                local.hour if aggregate == "hour" else 0,
            )
            if k != key or current is None:
                key = k
                first = datetime(k[0], k[1], k[2], k[3], tzinfo=zone)
                current = {
                    "start": iso(int(first.timestamp())),
                    "duration": 0,
                    "value": 0.0,
                    "cost": None,
                }
                points.append(current)
            current["duration"] += r.duration or 0
            current["value"] += (r.value or 0) * scale
            if r.cost is not None:
                current["cost"] = (current["cost"] or 0) + r.cost / espi.model.COST_SCALE
        yield {
            "meter_reading": espi.export.resource_key(mr),
            "unit": rt.unit if rt else "",
            "flow": rt.flow_direction.label if rt and rt.flow_direction is not None else None,
            "points": points,
        }


@bp.get("/api/usage-points/<int:up_id>/readings")
@api_key_allowed
def readings(up_id: int) -> Response:
    aggregate = request.args.get("aggregate", "none")
    if aggregate not in AGGREGATES:
        abort(400, f"aggregate must be one of {', '.join(AGGREGATES)}")
    row = accounts.usage_point(up_id)
    up = rows.usage_point(db.session(), row, when("start"), when("end"))
    zone = ZoneInfo(row.zone) if row.zone else UTC
    body = {
        "usage_point": row.id,
        "aggregate": aggregate,
        "time_zone": row.zone or "UTC",
        "series": list(buckets(up, aggregate, zone)),
    }
    return Response(json.dumps(body), mimetype="application/json")


@bp.get("/api/usage-points/<int:up_id>/summaries")
@api_key_allowed
def summaries(up_id: int) -> Response:
    up = rows.usage_point(db.session(), accounts.usage_point(up_id), when("start"), when("end"))
    out = []
    for bill in up.usage_summaries:
        period = bill.billing_period
        out.append(
            {
                "start": iso(period.start or 0) if period else None,
                "duration": period.duration if period else None,
                "amount": None
                if bill.bill_last_period is None
                else bill.bill_last_period / espi.model.COST_SCALE,
                "currency": bill.currency.label if bill.currency is not None else None,
                "line_items": [
                    {
                        "note": li.note,
                        "amount": (li.amount or 0) / espi.model.COST_SCALE,
                        "kind": li.item_kind.label if li.item_kind is not None else None,
                    }
                    for li in bill.cost_additional_detail_last_period
                ],
            }
        )
    return Response(json.dumps(out), mimetype="application/json")


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
        "value": {"type": "number"},
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
