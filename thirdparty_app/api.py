"""The JSON API (``/api/...``, described by ``/api/openapi.json``) and exports per usage point
(CSV, JSON, Green Button XML) for a date range. Both answer a signed-in browser or an API key
(``Authorization: Bearer KEY``) with that account's data only (an operator's: everyone's)."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, abort, request
from sqlalchemy import select

import espi
from appkit.http import http_problem
from espi import export
from espi.export import COST_DIGITS
from espi.xmlmap import norm_href

from . import accounts, db, pricing, rows
from .accounts import api_key_allowed, public
from .buckets import AGGREGATES, decimal, mean, period, summed, sums

bp = Blueprint("api", __name__)


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


def point(start: int, duration: int | None, value: Any, cost: Any, power: int) -> dict[str, Any]:
    """A reading or a bucket as the API gives it: a missing value or cost is null."""
    return {
        "start": iso(start),
        "duration": duration,
        "value": decimal(value, power),
        "cost": decimal(cost, -COST_DIGITS),
    }


@bp.get("/api/usage-points/<int:up_id>/readings")
@api_key_allowed
def readings(up_id: int) -> Response:
    """Per meter reading, its readings or their totals per local hour, day, week or month;
    ``cost`` is the utility's, each rate plan's estimate is under ``estimates`` (energy)."""
    aggregate = request.args.get("aggregate", "none")
    if aggregate not in AGGREGATES:
        abort(400, f"aggregate must be one of {', '.join(AGGREGATES)}")
    row = accounts.usage_point(up_id)
    zone = rows.zone(row)
    start, end = period(zone)
    s = db.session()
    plans = pricing.plans_of(row.id)
    series = []
    for mr in row.meter_readings:
        power = mr.reading_type.power_of_ten if mr.reading_type is not None else 0
        adds = summed(mr.reading_type)
        priced = plans if pricing.energy(mr) else []
        points = []
        if aggregate == "none":
            found = reading_rows(s, mr.id, start, end)
            estimates = {p.id: pricing.estimates(s, p.id, mr.id, start, end) for p in priced}
            for t, seq, d, v, c in found:
                points.append(point(t, d, v, c, power))
                if priced:
                    points[-1]["estimates"] = {
                        str(p): money(e.get((t, seq))) for p, e in estimates.items()
                    }
        else:
            by_plan = {p.id: {b[0]: b[3] for b in sums(s, mr.id, aggregate, zone, start, end, p.id)}
                       for p in priced}  # fmt: skip
            for t, d, v, c, n in sums(s, mr.id, aggregate, zone, start, end):
                points.append(point(t, d, v, c, power))
                if not adds:
                    points[-1]["value"] = mean(v, n, power)
                if priced:
                    points[-1]["estimates"] = {str(p): money(e.get(t)) for p, e in by_plan.items()}
        series.append({**describe(mr), "aggregation": "sum" if adds else "mean", "points": points})
    body = {
        "usage_point": row.id,
        "aggregate": aggregate,
        "time_zone": row.zone or "UTC",
        "start": None if start is None else iso(start),
        "end": None if end is None else iso(end),
        "plans": [{"id": str(p.id), "name": p.name, "status": p.status} for p in plans],
        "series": series,
    }
    return Response(json.dumps(body), mimetype="application/json")


def reading_rows(s: Any, mr_id: int, start: int | None, end: int | None) -> list[Any]:
    """A meter reading's readings in [start, end): (start, seq, duration, value, cost)."""
    r = db.Reading
    query = select(r.start, r.seq, r.duration, r.value, r.cost).where(r.meter_reading_id == mr_id)
    query = query.where(r.start >= start) if start is not None else query
    query = query.where(r.start < end) if end is not None else query
    return list(s.execute(query.order_by(r.start, r.seq)))


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


@bp.get("/api/usage-points/<int:up_id>/plans")
@api_key_allowed
def plans(up_id: int) -> Response:
    """The utility's costs and each rate plan's estimates for a period, side by side: by local
    month, in total, and each plan's by time-of-use period."""
    row = accounts.usage_point(up_id)
    found = pricing.compare(db.session(), row, *period(rows.zone(row)))

    def line(line: pricing.Line) -> dict[str, Any]:
        return {
            "start": iso(line.start),
            "imported_kwh": float(line.imported),
            "exported_kwh": float(line.exported),
            "costs": {c.key: money(line.costs.get(c.key)) for c in found.columns},
        }

    body = {
        "usage_point": row.id,
        "start": None if found.start is None else iso(found.start),
        "end": None if found.end is None else iso(found.end),
        "currency": found.currency,
        "columns": [
            {
                "key": c.key,
                "name": c.name,
                "kind": "estimate" if c.plan is not None else "utility",
                "status": c.plan.status if c.plan is not None else None,
            }
            for c in found.columns
        ],
        "months": [line(m) for m in found.months],
        "total": line(found.total),
        "tou": {
            key: [{"period": n, "kwh": float(kwh), "cost": money(cost)} for n, kwh, cost in periods]
            for key, periods in found.tou.items()
        },
    }
    return Response(json.dumps(body), mimetype="application/json")


@bp.get("/usage-points/<int:up_id>/export")
@api_key_allowed
def export_usage_point(up_id: int) -> Response:
    """The usage point's readings for a date range as CSV, JSON or Green Button XML. CSV and
    JSON name the utility's cost ``utility_cost`` and each rate plan's estimate ``estimate:
    PLAN``; the XML carries the utility's costs only."""
    fmt = request.args.get("format", "csv")
    row = accounts.usage_point(up_id)
    start, end = period(rows.zone(row))
    s = db.session()
    up = rows.usage_point(s, row, start, end)
    name = f"usage-point-{row.id}"
    if fmt == "xml":
        body = espi.dumps(espi.builder.feed(up))
        return attachment(body, "application/atom+xml", f"{name}.xml")
    if fmt not in ("csv", "json"):
        abort(400, "format must be csv, json or xml")
    plans = pricing.plans_of(row.id)
    columns = [c if c != "cost" else "utility_cost" for c in export.COLUMNS]
    columns += [f"estimate: {p.name}" for p in plans]
    out = io.StringIO()
    found = export_rows(s, row, up, plans, start, end)
    if fmt == "csv":
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(found)
    else:
        out.write("[" + ",".join(f"\n{json_object(r)}" for r in found) + "\n]\n")
    return attachment(
        out.getvalue().encode(), "text/csv" if fmt == "csv" else "application/json", f"{name}.{fmt}"
    )


def export_rows(
    s: Any,
    row: db.UsagePoint,
    up: espi.UsagePoint,
    plans: list[db.RatePlan],
    start: int | None,
    end: int | None,
) -> Iterator[dict[str, Any]]:
    """The export's rows: the library's (:func:`espi.export.row`), ``cost`` named
    ``utility_cost``, and each plan's estimate (energy readings it priced)."""
    for mr_row, mr in zip(row.meter_readings, up.meter_readings, strict=True):
        priced = plans if pricing.energy(mr_row) else []
        estimates = [(p, pricing.estimates(s, p.id, mr_row.id, start, end)) for p in priced]
        previous, seq = None, 0
        for reading in mr.readings():
            seq = seq + 1 if reading.start == previous else 0
            previous = reading.start
            record = export.row(reading)
            record["utility_cost"] = record.pop("cost")
            for plan, found in estimates:
                cost = found.get((reading.start or 0, seq))
                record[f"estimate: {plan.name}"] = (
                    export.decimal(cost, -COST_DIGITS) if cost is not None else None
                )
            yield record


def json_object(record: dict[str, Any]) -> str:
    """An export row as a JSON object: its amounts (exact decimal strings) as JSON numbers."""

    def number(key: str) -> bool:
        return key in ("value", "utility_cost") or key.startswith("estimate: ")

    items = (
        f"{json.dumps(k)}: {v if v is not None and number(k) else json.dumps(v)}"
        for k, v in record.items()
    )
    return "{" + ", ".join(items) + "}"


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
        "estimates": {
            "type": "object",
            "description": "each rate plan's estimate of the energy's cost, by plan id (energy "
            "series of usage points with plans only)",
            "additionalProperties": {"type": ["number", "null"]},
        },
    },
}
MONEY_LINE = {
    "type": "object",
    "required": ["start", "imported_kwh", "exported_kwh", "costs"],
    "properties": {
        "start": {"type": "string", "format": "date-time"},
        "imported_kwh": {"type": "number"},
        "exported_kwh": {"type": "number"},
        "costs": {
            "type": "object",
            "description": "by column key: utility, plan-ID",
            "additionalProperties": {"type": ["number", "null"]},
        },
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
            "plans": {
                "type": "array",
                "description": "the usage point's rate plans (their estimates: a point's "
                "estimates, by id)",
                "items": {
                    "type": "object",
                    "required": ["id", "name", "status"],
                    "properties": {
                        "id": {"type": "string"},
                        "name": {"type": "string"},
                        "status": {"enum": ["pricing", "priced", "failed"]},
                    },
                },
            },
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
    "Plans": {
        "type": "object",
        "required": ["usage_point", "currency", "columns", "months", "total", "tou"],
        "properties": {
            "usage_point": {"type": "integer"},
            "start": {"type": ["string", "null"], "format": "date-time"},
            "end": {"type": ["string", "null"], "format": "date-time"},
            "currency": {"type": "string"},
            "columns": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key", "name", "kind"],
                    "properties": {
                        "key": {"type": "string"},
                        "name": {"type": "string"},
                        "kind": {"enum": ["utility", "estimate"]},
                        "status": {"type": ["string", "null"]},
                    },
                },
            },
            "months": {"type": "array", "items": MONEY_LINE},
            "total": MONEY_LINE,
            "tou": {
                "type": "object",
                "description": "each plan's estimates by time-of-use period, by column key",
                "additionalProperties": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["period", "kwh", "cost"],
                        "properties": {
                            "period": {"type": "string"},
                            "kwh": {"type": "number"},
                            "cost": {"type": ["number", "null"]},
                        },
                    },
                },
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
        "/api/usage-points/{up_id}/plans": {
            "get": {
                "summary": "The utility's cost beside each rate plan's estimate: in total, by "
                "local month and by time-of-use period",
                "parameters": [UP_ID, *PERIOD],
                "responses": {"200": ok("Plans"), "401": UNAUTHORIZED, "404": PROBLEM},
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
