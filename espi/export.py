"""Readings as flat rows: CSV and JSON, written as they stream (flat memory).

A row per reading: usage point, reading type, start (ISO-8601 UTC), duration (s), value in the
reading type's unit, the unit, cost in currency units, currency, qualities. Values and costs
are exact decimals (ESPI keeps integers with a power of ten), never binary floats.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import IO, Any

from .model import COST_SCALE, IntervalReading, Resource
from .xmlmap import norm_href

COLUMNS = (
    "usage_point",
    "reading_type",
    "start",
    "duration",
    "value",
    "unit",
    "cost",
    "currency",
    "quality",
)
COST_DIGITS = len(str(COST_SCALE)) - 1  # 5: ESPI cost is in 1/100000


def resource_key(res: Resource | None) -> str:
    """A short, stable name for a resource: its self link's path below ``resource/``, else its
    Atom id, else empty."""
    if res is None:
        return ""
    href = res.link("self")
    return norm_href(href) if href else (res.id or "")


def decimal(value: int, power_of_ten: int) -> str:
    """``value * 10**power_of_ten`` written exactly (``1234, -3`` -> ``1.234``)."""
    return format(Decimal(value).scaleb(power_of_ten), "f")


def row(r: IntervalReading) -> dict[str, Any]:
    rt = r.reading_type
    power = int(rt.power_of_ten_multiplier or 0) if rt is not None else 0
    return {
        "usage_point": resource_key(r.usage_point),
        "reading_type": resource_key(rt),
        "start": "" if r.start is None else f"{r.start_datetime:%Y-%m-%dT%H:%M:%SZ}",
        "duration": r.duration,
        "value": None if r.value is None else decimal(r.value, power),
        "unit": r.unit,
        "cost": None if r.cost is None else decimal(r.cost, -COST_DIGITS),
        "currency": rt.currency.label if rt is not None and rt.currency is not None else "",
        "quality": ";".join(q.label for q in r.qualities),
    }


def rows(readings: Iterable[IntervalReading]) -> Iterator[dict[str, Any]]:
    return map(row, readings)


def write_csv(readings: Iterable[IntervalReading], out: IO[str]) -> int:
    """Write a CSV with a header row; return the number of readings written."""
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    n = 0
    for record in rows(readings):
        writer.writerow(record)
        n += 1
    return n


def write_json(readings: Iterable[IntervalReading], out: IO[str]) -> int:
    """Write a JSON array of row objects, one per line; values and costs as exact numbers."""
    n = 0
    out.write("[")
    for record in rows(readings):
        out.write(",\n" if n else "\n")
        out.write(json_object(record))
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def json_object(record: dict[str, Any]) -> str:
    """One row as a JSON object; the decimal strings of value and cost become JSON numbers."""
    return (
        "{"
        + ", ".join(
            f"{json.dumps(k)}: {v if k in EXACT and v is not None else json.dumps(v)}"
            for k, v in record.items()
        )
        + "}"
    )


EXACT = ("value", "cost")
