"""Local time and totals: a request's dates read in a usage point's time zone, and readings
summed per local hour, day, week (from Monday) or month by the database, with their utility's
costs or a rate plan's estimates. Numbers leave here as the decimals they are."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from flask import abort, request
from sqlalchemy import BigInteger, and_, case, func, select

import espi
from espi.codes import UnitSymbolKind as U

from . import db

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
    (``156560, -6`` is ``0.15656``, not ``0.15655999999999998``): the double nearest to it,
    which Python writes as the decimal. Dividing by an exact power of ten rounds once (ten
    times faster than through Decimal); multiplying by ``10.0**power`` rounded twice."""
    if amount is None:
        return None
    if isinstance(amount, Decimal):
        return float(amount.scaleb(power))
    return amount / 10**-power if power < 0 else float(amount * 10**power)


def mean(total: int | None, count: int, power: int) -> float | None:
    """A bucket's mean, to the unit's precision."""
    if total is None or not count:
        return None
    return decimal((Decimal(total) / count).quantize(Decimal(1), ROUND_HALF_EVEN), power)


def offset(zone: Any, epoch: int) -> int:
    found = datetime.fromtimestamp(epoch, zone).utcoffset()
    return int(found.total_seconds()) if found is not None else 0


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
    s: Any,
    mr_id: int,
    aggregate: str,
    zone: Any,
    start: int | None,
    end: int | None,
    plan: int | None = None,
) -> list[Bucket]:
    """A meter reading's readings summed per local hour, day, week (from Monday) or month, in
    SQL, by start; missing values and costs are left out of the sums (all missing: None). A
    local hour is an hour of the clock where it was read: a spring-forward day has 23, a
    fall-back day 25 (its repeated hour twice, one per UTC offset). The costs are the
    utility's, or with ``plan`` that rate plan's estimates."""
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
    cost: Any = r.cost if plan is None else db.PlanCost.cost
    totals = (func.sum(c).cast(BigInteger) for c in (r.duration, r.value, cost))
    query = select(key, *totals, func.count(r.value)).where(*where).group_by(key).order_by(key)
    if plan is not None:
        query = query.outerjoin(db.PlanCost, estimate_of(plan))
    found = [tuple(row) for row in s.execute(query)]
    if aggregate == "hour":
        return found
    days = [(local_day(k), *values) for k, *values in found]
    if aggregate == "day":
        return [(midnight(zone, day), *values) for day, *values in days]
    groups: dict[date, list[Any]] = {}
    for day, *values in days:
        first_day = (
            day - timedelta(days=day.weekday()) if aggregate == "week" else day.replace(day=1)
        )
        groups[first_day] = [
            add(a, b) for a, b in zip(groups.get(first_day, [None] * 4), values, strict=True)
        ]
    return [(midnight(zone, day), *values) for day, values in groups.items()]


def estimate_of(plan: int) -> Any:
    """The join of a reading to its estimate on a rate plan."""
    pc, r = db.PlanCost, db.Reading
    return and_(
        pc.rate_plan_id == plan,
        pc.meter_reading_id == r.meter_reading_id,
        pc.start == r.start,
        pc.seq == r.seq,
    )


def add(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else a + b
