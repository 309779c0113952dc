"""``espi lint``: what is wrong or odd in a Green Button file beyond what the schema checks.

Streams the document (flat memory) and reports, per meter reading's series of readings:
gaps and overlaps, readings outside their block, durations that contradict the reading type's
``intervalLength``, 23- and 25-hour days (DST changes, for information), cost without a
currency and implausible values; across the document: duplicate Atom ids, links to resources
the document does not hold, overlapping billing periods, bills without a currency; and every
deviation the reader had to tolerate. Severities: error (the data contradicts itself),
warning (probably wrong), info (worth knowing).
"""

from __future__ import annotations

import itertools
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import builder, timeparams
from . import model as m
from .codes import AccumulationKind, FlowDirectionKind, ServiceKind, UnitSymbolKind
from .errors import where
from .reader import ParseOptions, Source, iter_readings
from .timeline import Step, Timeline
from .xmlmap import norm_href

SEVERITIES = ("error", "warning", "info")
DST_DAYS = (23 * 3600, 25 * 3600)
#: Above this average power an electricity reading is implausible for one service point.
MAX_PLAUSIBLE_WATTS = 50e6


@dataclass(frozen=True, slots=True)
class Finding:
    file: str | None
    line: int | None
    severity: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{where(self.file, self.line)}: {self.severity}: {self.message} [{self.code}]"


def span(seconds: int) -> str:
    days, rest = divmod(abs(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} d" * bool(days), f"{hours} h" * bool(hours), f"{minutes} min" * bool(minutes)]
    text = " ".join(p for p in parts if p) or f"{secs} s"
    return text if secs == 0 or not (days or hours or minutes) else f"{text} {secs} s"


def when(epoch: int, zone: Any) -> str:
    return datetime.fromtimestamp(epoch, zone).strftime("%Y-%m-%d %H:%M %Z").strip()


def within(start: int, end: int, period: m.DateTimeInterval) -> bool:
    """Whether [start, end) lies in the period (a period without both ends holds anything)."""
    if period.start is None or period.end is None:
        return True
    return period.start <= start and end <= period.end


@dataclass
class Series:
    """The readings of one meter reading (or of the blocks that belong to none)."""

    name: str
    reading_type: m.ReadingType | None
    zone: Any
    timeline: Timeline = field(default_factory=Timeline)
    durations: Counter[int] = field(default_factory=Counter)
    first_line: int | None = None
    costed_without_currency: int = 0
    missing_values: int = 0


class Linter:
    def __init__(self, source: Source, limit: int = 20) -> None:
        self.source = source
        self.limit = limit
        self.file: str | None = None
        self.counts: Counter[str] = Counter()
        self.series: dict[int, Series] = {}
        self.pending: list[Finding] = []  # findings made outside a generator (local time)

    def find(self, line: int | None, severity: str, code: str, message: str) -> Iterator[Finding]:
        self.counts[code] += 1
        if self.counts[code] <= self.limit:
            yield Finding(self.file, line, severity, code, message)

    def run(self) -> Iterator[Finding]:
        stream = iter_readings(self.source, ParseOptions(warn=False))
        last_block: m.IntervalBlock | None = None
        for r in stream:
            block = r.block
            if self.file is None:
                self.file = stream.file
            if block is not last_block and block is not None:
                last_block = block
                yield from self.block(block)
            yield from self.reading(r, block)
        self.file = self.file or stream.file
        yield from self.pending
        for s in self.series.values():
            yield from self.end_of_series(s)
        yield from self.resources(stream.resources)
        for q in stream.quirks:
            yield Finding(
                q.file,
                q.line,
                "warning",
                f"tolerated-{q.code}",
                f"{q.message}" + (f" ({q.count} times)" if q.count > 1 else ""),
            )
        for code, n in self.counts.items():
            if n > self.limit:
                yield Finding(self.file, None, "info", code, f"... and {n - self.limit} more")

    def series_of(self, block: m.IntervalBlock | None) -> Series:
        mr = block.meter_reading if block is not None else None
        key = id(mr) if mr is not None else 0
        s = self.series.get(key)
        if s is None:
            up = mr.usage_point if mr is not None else None
            ltp = up.local_time_parameters if up is not None else None
            zone = self.zone(ltp, up.source_line if up is not None else None)
            name = (mr.link("self") or "") if mr is not None else ""
            s = Series(norm_href(name) or "readings", mr.reading_type if mr else None, zone)
            s.first_line = block.source_line if block is not None else None
            self.series[key] = s
        return s

    def zone(self, ltp: m.LocalTimeParameters | None, line: int | None) -> timeparams.EspiZone:
        """The local time of a usage point; what its LocalTimeParameters get wrong is a finding
        (the rule decoder's warnings are caught here, not left to the caller)."""
        if ltp is None:
            return timeparams.EspiZone(0, 0, None, None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            zone = timeparams.zone(ltp)
        for w in caught:
            self.pending.append(
                Finding(self.file, ltp.source_line or line, "warning", "local-time", str(w.message))
            )
        return zone

    def block(self, block: m.IntervalBlock) -> Iterator[Finding]:
        """A block that is one local day of 23 or 25 hours: a DST change, for information."""
        period = block.interval
        if period is None or period.start is None or period.duration not in DST_DAYS:
            return
        s = self.series_of(block)
        day_start, day_length = builder.day_start(period.start, s.zone)
        if (day_start, day_length) != (period.start, period.duration):
            return
        hours = day_length // 3600
        yield from self.find(
            block.source_line,
            "info",
            "dst-day",
            f"{hours}-hour day {datetime.fromtimestamp(period.start, s.zone):%Y-%m-%d}: "
            f"block of {hours} h (a DST change)",
        )

    def reading(self, r: m.IntervalReading, block: m.IntervalBlock | None) -> Iterator[Finding]:
        s = self.series_of(block)
        line = block.source_line if block is not None else None
        if r.start is None:
            yield from self.find(line, "error", "no-time-period", "reading without a timePeriod")
            return
        duration = r.duration or 0
        end = r.start + duration
        s.durations[duration] += 1
        step = s.timeline.add(r.start, duration)
        if step is not None:
            yield from self.sequence(s, step, r.start, end, line)
        if r.value is None:
            s.missing_values += 1
        period = block.interval if block is not None else None
        if period is not None and not within(r.start, end, period):
            yield from self.find(
                line,
                "error",
                "outside-block",
                f"{s.name}: reading {when(r.start, s.zone)} ({span(duration)}) lies outside its "
                f"block {when(period.start or 0, s.zone)} to {when(period.end or 0, s.zone)}",
            )
        rt = s.reading_type
        if r.cost is not None and (rt is None or rt.currency is None):
            s.costed_without_currency += 1
        if rt is not None and r.value is not None:
            yield from self.plausible(r, rt, s, line)

    def sequence(
        self, s: Series, step: Step, start: int, end: int, line: int | None
    ) -> Iterator[Finding]:
        """A reading against the one listed before it: a gap between them, or an overlap."""
        if step.kind == "overlap":
            yield from self.find(
                line,
                "error",
                "overlap",
                f"{s.name}: reading at {when(start, s.zone)} ({span(end - start)}) shares "
                f"{span(step.seconds)} with the one before",
            )
            return
        yield from self.find(
            line,
            "warning",
            "gap",
            f"{s.name}: gap of {span(step.seconds)} from {when(step.start, s.zone)} "
            f"to {when(step.end, s.zone)}",
        )

    def plausible(
        self, r: m.IntervalReading, rt: m.ReadingType, s: Series, line: int | None
    ) -> Iterator[Finding]:
        delta = rt.accumulation_behaviour == AccumulationKind.DELTA_DATA
        value = r.value or 0
        if delta and rt.flow_direction == FlowDirectionKind.FORWARD and value < 0:
            yield from self.find(
                line,
                "warning",
                "negative-delivered",
                f"{s.name}: negative value {value} for delivered energy "
                f"at {when(r.start or 0, s.zone)}",
            )
        if rt.uom == UnitSymbolKind.WH and r.duration:
            watts = abs(value) * rt.scale * 3600 / r.duration
            if watts > MAX_PLAUSIBLE_WATTS:
                yield from self.find(
                    line,
                    "warning",
                    "implausible-value",
                    f"{s.name}: {value * rt.scale:g} Wh in {span(r.duration)} is an average of "
                    f"{watts / 1e6:,.0f} MW at {when(r.start or 0, s.zone)}",
                )

    def end_of_series(self, s: Series) -> Iterator[Finding]:
        rt = s.reading_type
        expected = rt.interval_length if rt is not None else None
        if expected:
            odd = {d: n for d, n in s.durations.items() if d != expected}
            if expected == 86400:
                for d in DST_DAYS:
                    if d in odd:
                        yield from self.find(
                            s.first_line,
                            "info",
                            "dst-day",
                            f"{s.name}: {odd.pop(d)} daily reading(s) of {d // 3600} h "
                            "(DST changes)",
                        )
            if odd:
                listing = ", ".join(f"{n} of {span(d)}" for d, n in sorted(odd.items()))
                yield from self.find(
                    s.first_line,
                    "warning",
                    "interval-length",
                    f"{s.name}: the reading type says intervalLength {expected} s "
                    f"({span(expected)}) "
                    f"but readings last otherwise: {listing}",
                )
        note = s.timeline.order_note()
        if note is not None:
            reverse = s.timeline.order == "reverse"
            yield from self.find(
                s.first_line,
                "info" if reverse else "warning",
                "reverse-order" if reverse else "out-of-order",
                f"{s.name}: {note}",
            )
        if s.missing_values:
            yield from self.find(
                s.first_line,
                "warning",
                "missing-value",
                f"{s.name}: {s.missing_values} reading(s) without a value (missing, not zero)",
            )
        if s.costed_without_currency:
            yield from self.find(
                s.first_line,
                "warning",
                "cost-without-currency",
                f"{s.name}: {s.costed_without_currency} reading(s) carry a cost "
                "but the reading type "
                "names no currency",
            )

    def resources(self, resources: list[Any]) -> Iterator[Finding]:
        ids = Counter(r.id for r in resources if r.id)
        for atom_id, n in ids.items():
            if n > 1:
                first = next(r for r in resources if r.id == atom_id)
                yield from self.find(
                    first.source_line,
                    "error",
                    "duplicate-id",
                    f"atom:id {atom_id} is used by {n} entries",
                )
        types = {
            norm_href(h) for r in resources if isinstance(r, m.ReadingType) if (h := r.link("self"))
        }
        for mr in (r for r in resources if isinstance(r, m.MeterReading)):
            named = [h for h in mr.related() if "ReadingType" in h]
            if named and types and not any(norm_href(h) in types for h in named):
                yield from self.find(
                    mr.source_line,
                    "warning",
                    "dangling-link",
                    f"MeterReading links to {named[0]}, which this document does not hold",
                )
        for up in (r for r in resources if isinstance(r, m.UsagePoint)):
            yield from self.bills(up)

    def bills(self, up: m.UsagePoint) -> Iterator[Finding]:
        periods = sorted(
            (s.billing_period.start, s.billing_period.end or 0, s)
            for s in up.usage_summaries
            if s.billing_period is not None and s.billing_period.start is not None
        )
        for (_, end_a, a), (start_b, _, b) in itertools.pairwise(periods):
            if start_b < end_a:
                yield from self.find(
                    b.source_line,
                    "warning",
                    "overlapping-bills",
                    f"billing periods overlap by {span(end_a - start_b)} "
                    f"(usage summaries at lines {a.source_line} and {b.source_line})",
                )
        for s in up.usage_summaries:
            if s.currency is None and (s.bill_last_period or s.cost_additional_detail_last_period):
                yield from self.find(
                    s.source_line, "warning", "cost-without-currency", "a bill without a currency"
                )
        if up.kind is None:
            yield from self.find(
                up.source_line, "info", "no-service-kind", "usage point without a service kind"
            )
        elif up.kind not in (ServiceKind.ELECTRICITY, ServiceKind.GAS, ServiceKind.WATER):
            yield from self.find(
                up.source_line,
                "info",
                "service-kind",
                f"usage point of service kind {up.kind.label}",
            )


def lint(source: Source, limit: int = 20) -> list[Finding]:
    """Every finding for a document, errors first. Raises :class:`~espi.ParseError` when it
    cannot be read at all."""
    findings = list(Linter(source, limit).run())
    return sorted(findings, key=lambda f: SEVERITIES.index(f.severity))
