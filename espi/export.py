"""Readings as flat rows: CSV and JSON, written as they stream (flat memory).

A row per reading: usage point, reading type, start (ISO-8601 UTC), duration (s), value in the
reading type's unit, the unit, cost in currency units, currency, qualities. Values and costs
are exact decimals (ESPI keeps integers with a power of ten), never binary floats.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

from . import builder, timeparams
from .codes import Currency, QualityOfReading, ServiceKind, UnitSymbolKind
from .errors import EspiWarning, ParseError
from .model import COST_SCALE, Feed, IntervalReading, LocalTimeParameters, Resource, UsagePoint
from .reader import ParseOptions, Source, iter_readings

if TYPE_CHECKING:
    import pandas as pd

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
    return res.key if res is not None else ""


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


# --------------------------------------------------------------------------- CSV back to ESPI


def by_label(kind: type[Any]) -> dict[str, Any]:
    return {kind(code).label: kind(code) for code in kind.__members__.values()}


UNITS: dict[str, UnitSymbolKind] = by_label(UnitSymbolKind)
CURRENCIES: dict[str, Currency] = by_label(Currency)
QUALITIES: dict[str, QualityOfReading] = by_label(QualityOfReading)
ELECTRIC_UNITS = {"Wh", "W", "VAh", "VArh", "VA", "VAr", "V", "A"}
GAS_UNITS = {"therm", "ft3"}


def scaled(text: str, where: str) -> tuple[int, int]:
    """An exact decimal as (integer, power of ten): ``"1.250"`` -> ``(1250, -3)``."""
    try:
        number = Decimal(text)
    except ArithmeticError as err:
        raise ParseError(f"{text!r} is not a number", file=where) from err
    exponent = int(number.as_tuple().exponent)
    return int(number.scaleb(-exponent)), exponent


def read_csv(stream: IO[str], name: str = "<csv>", local_time: str | None = None) -> Feed:
    """A Feed from rows in the ``espi export`` format (the inverse of :func:`write_csv`).

    Rows are grouped into one usage point per ``usage_point`` value and one meter reading per
    ``reading_type`` value; values keep every decimal they have (the reading type's power of
    ten is the smallest one the series needs). ``local_time``: an IANA zone for the usage
    points, so blocks are cut by local day."""
    reader = csv.DictReader(stream)
    missing = [c for c in ("start", "duration", "value") if c not in (reader.fieldnames or ())]
    if missing:
        raise ParseError(f"not an espi export CSV: no column {', '.join(missing)}", file=name)
    groups: dict[tuple[str, str], list[tuple[int, dict[str, str]]]] = {}
    for line, rec in enumerate(reader, start=2):
        groups.setdefault((rec.get("usage_point") or "", rec.get("reading_type") or ""), []).append(
            (line, rec)
        )
    ltp: LocalTimeParameters | str | None = local_time
    points: dict[str, Any] = {}
    for (up_key, _rt_key), rows in groups.items():
        unit = rows[0][1].get("unit") or ""
        kind = (
            ServiceKind.ELECTRICITY
            if unit in ELECTRIC_UNITS
            else ServiceKind.GAS
            if unit in GAS_UNITS
            else None
        )
        up = points.get(up_key)
        if up is None:
            up = points[up_key] = builder.usage_point(
                kind or ServiceKind.ELECTRICITY, local_time=ltp
            )
            if kind is None:
                up.service_category = None
        parsed = []
        for line, rec in rows:
            at = f"{name}:{line}"
            try:
                start = int(datetime.fromisoformat(rec["start"].replace("Z", "+00:00")).timestamp())
                duration = int(rec["duration"])
            except (ValueError, KeyError) as err:
                raise ParseError(f"bad start or duration: {err}", file=at) from err
            value, power = scaled(rec["value"], at)
            cost = builder.money(rec["cost"]) if rec.get("cost") else None
            qualities = tuple(
                QUALITIES[q] for q in (rec.get("quality") or "").split(";") if q in QUALITIES
            )
            parsed.append((start, duration, value, power, cost, qualities))
        power = min(p for *_, p, _c, _q in parsed)
        currency = CURRENCIES.get(rows[0][1].get("currency") or "")
        rt = builder.reading_type(
            UNITS.get(unit, UnitSymbolKind.NONE),
            power_of_ten=power,
            interval_length=Counter(d for _s, d, *_ in parsed).most_common(1)[0][0],
            currency=currency,
        )
        series = [
            IntervalReading(start=s, duration=d, value=v * 10 ** (p - power), cost=c, qualities=q)
            for s, d, v, p, c, q in parsed
        ]
        builder.meter_reading(up, rt, series)
    return builder.feed(*points.values())


# --------------------------------------------------------------------------- DataFrame

#: Units shown in their everyday size: (unit, factor from the base unit).
NATURAL_UNITS = {
    "Wh": ("kWh", 1e-3),
    "W": ("kW", 1e-3),
    "VAh": ("kVAh", 1e-3),
    "VArh": ("kVArh", 1e-3),
    "VA": ("kVA", 1e-3),
    "VAr": ("kVAr", 1e-3),
}
FRAME_COLUMNS = (
    "usage_point", "reading_type", "start", "local_start", "duration", "quantity", "unit",
    "cost", "currency", "quality", "tou",
)  # fmt: skip


def to_dataframe(source: Source | Feed, options: ParseOptions | None = None) -> pd.DataFrame:
    """One row per reading of a document (path, bytes, binary file) or of a parsed Feed, as a
    pandas DataFrame: ``usage_point``, ``reading_type``, ``start`` (UTC), ``local_start`` (the
    usage point's local time from its LocalTimeParameters, UTC when it has none, as aware
    datetimes), ``duration`` (s), ``quantity`` in the unit's everyday size (kWh for Wh, kW
    for W; therm, m3 as they are), ``unit``, ``cost`` in the currency, ``currency``,
    ``quality``, ``tou``. A reading without a value has NaN as its quantity (and no cost,
    NaN as its cost). Needs pandas (``espi[pandas]``)."""
    try:
        import pandas
    except ImportError as err:
        raise ImportError("to_dataframe needs pandas: pip install 'espi[pandas]'") from err
    readings = source.readings() if isinstance(source, Feed) else iter_readings(source, options)
    zones: dict[int, Any] = {}
    rows = []
    for r in readings:
        rt, up = r.reading_type, r.usage_point
        unit, factor = NATURAL_UNITS.get(r.unit, (r.unit, 1.0))
        zone = zones.get(id(up))
        if zone is None:
            zone = zones[id(up)] = local_zone(up)
        start = r.start_datetime
        rows.append(
            (
                resource_key(up), resource_key(rt), start,
                start.astimezone(zone) if start is not None else None, r.duration,
                r.quantity * factor if r.quantity is not None else math.nan, unit,
                math.nan if r.cost is None else r.cost_amount,
                rt.currency.label if rt is not None and rt.currency else "",
                ";".join(q.label for q in r.qualities), r.tou,
            )
        )  # fmt: skip
    frame = pandas.DataFrame.from_records(rows, columns=list(FRAME_COLUMNS))
    frame["start"] = pandas.to_datetime(frame["start"], utc=True)
    # the file's own rules (one DST rule for every year), which pandas cannot hold: kept as
    # aware datetimes
    frame["local_start"] = pandas.Series([row[3] for row in rows], dtype=object)
    return frame


def local_zone(up: UsagePoint | None) -> Any:
    """A usage point's local time (its LocalTimeParameters), else UTC."""
    ltp = up.local_time_parameters if up is not None else None
    if ltp is None:
        return UTC
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EspiWarning)  # lint reports odd rules; here: use them
        return timeparams.zone(ltp)
