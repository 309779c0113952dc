"""LocalTimeParameters: the DST rule codec and local-time conversion.

ESPI gives a usage point's local time as a standard offset (``tzOffset``), a DST offset
(``dstOffset``) and two rules saying when DST starts and ends each year. A rule is 32 bits
(espi.xsd, DstRuleType), written as 8 hex digits::

    bits 28-31 month (1-12)        bits 25-27 operator       bits 20-24 day of month (0 = n/a)
    bits 17-19 day of week (1 = Monday ... 7 = Sunday, 0 = n/a)
    bits 12-16 hour (0-23)         bits 0-11 seconds (0-3599)

Operators: 0 the day of the month; 1 the day of the week on or after the day of the month;
2-6 its first to fifth occurrence in the month; 7 its last occurrence. ``FFFFFFFF``: no DST.
PG&E's ``360E2000`` is the second Sunday of March at 02:00, ``B40E2000`` the first Sunday of
November at 02:00. The start rule is read in local standard time and the end rule in local
daylight time, as North American rules are stated (and as zoneinfo agrees).

    tz = espi.timeparams.zone(ltp)                 # a datetime.tzinfo
    espi.timeparams.to_local(ltp, 1700000000)      # aware local datetime
    espi.timeparams.from_local(ltp, datetime(...)) # epoch seconds (fold=1: the second 01:30)
    espi.timeparams.from_zone("America/Los_Angeles", 2024)  # -> LocalTimeParameters
"""

from __future__ import annotations

import calendar
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from .errors import EspiWarning
from .model import LocalTimeParameters

DISABLED = 0xFFFFFFFF
EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - naive on purpose: wall-clock arithmetic
#: Zones tried first when naming the zone of a LocalTimeParameters (the field's home ground).
PREFERRED_ZONES = (
    "America/Los_Angeles", "America/Denver", "America/Phoenix", "America/Chicago",
    "America/New_York", "America/Anchorage", "Pacific/Honolulu", "America/Halifax",
    "America/St_Johns", "America/Toronto", "America/Vancouver", "America/Edmonton",
    "America/Winnipeg", "America/Regina", "America/Puerto_Rico", "UTC",
)  # fmt: skip

#: US states, DC and territories -> the IANA zone most of their people live in: for a source
#: that says where a home is (its state, or a ZIP code's) but not its local time. States split
#: between two zones get the larger part's (Florida's panhandle, west Kentucky and Tennessee's
#: east, the Idaho panhandle, west Texas are the exceptions).
STATE_ZONES = {
    "AL": "America/Chicago", "AK": "America/Anchorage", "AZ": "America/Phoenix",
    "AR": "America/Chicago", "CA": "America/Los_Angeles", "CO": "America/Denver",
    "CT": "America/New_York", "DE": "America/New_York", "DC": "America/New_York",
    "FL": "America/New_York", "GA": "America/New_York", "HI": "Pacific/Honolulu",
    "ID": "America/Boise", "IL": "America/Chicago", "IN": "America/Indiana/Indianapolis",
    "IA": "America/Chicago", "KS": "America/Chicago", "KY": "America/New_York",
    "LA": "America/Chicago", "ME": "America/New_York", "MD": "America/New_York",
    "MA": "America/New_York", "MI": "America/Detroit", "MN": "America/Chicago",
    "MS": "America/Chicago", "MO": "America/Chicago", "MT": "America/Denver",
    "NE": "America/Chicago", "NV": "America/Los_Angeles", "NH": "America/New_York",
    "NJ": "America/New_York", "NM": "America/Denver", "NY": "America/New_York",
    "NC": "America/New_York", "ND": "America/Chicago", "OH": "America/New_York",
    "OK": "America/Chicago", "OR": "America/Los_Angeles", "PA": "America/New_York",
    "RI": "America/New_York", "SC": "America/New_York", "SD": "America/Chicago",
    "TN": "America/Chicago", "TX": "America/Chicago", "UT": "America/Denver",
    "VT": "America/New_York", "VA": "America/New_York", "WA": "America/Los_Angeles",
    "WV": "America/New_York", "WI": "America/Chicago", "WY": "America/Denver",
    "PR": "America/Puerto_Rico", "VI": "America/St_Thomas", "GU": "Pacific/Guam",
    "MP": "Pacific/Saipan", "AS": "Pacific/Pago_Pago",
}  # fmt: skip


def state_zone(state: str | None) -> str | None:
    """The IANA zone of a US state or territory by its two-letter code (``"RI"`` ->
    ``America/New_York``); None when unknown. See :data:`STATE_ZONES`."""
    return STATE_ZONES.get((state or "").strip().upper())


def warn(message: str) -> None:
    warnings.warn(EspiWarning(message), stacklevel=3)


@dataclass(frozen=True, slots=True)
class DstRule:
    """One decoded DST rule. ``day_of_week``: 1 = Monday ... 7 = Sunday."""

    month: int
    operator: int = 0
    day_of_month: int = 0
    day_of_week: int = 0
    hour: int = 0
    seconds: int = 0

    @classmethod
    def decode(cls, text: str | int | None) -> DstRule | None:
        """The rule a file holds, or None for "no DST" (``FFFFFFFF``, absent, unreadable).

        Tolerated with a warning: a ``0x`` prefix, fewer than 8 hex digits (read as if the
        missing trailing digits were 0, as in some SCE files)."""
        if text is None:
            return None
        if isinstance(text, int):
            value = text
        else:
            raw = text.strip()
            digits = raw[2:] if raw.lower().startswith("0x") else raw
            try:
                value = int(digits, 16)
            except ValueError:
                warn(f"DST rule {raw!r} is not hexadecimal: no DST assumed")
                return None
            if len(digits) < 8:
                warn(f"DST rule {raw!r} is truncated: read as {digits.upper():0<8}")
                value <<= 4 * (8 - len(digits))
        if value == DISABLED:
            return None
        rule = cls(
            month=value >> 28,
            operator=(value >> 25) & 0x7,
            day_of_month=(value >> 20) & 0x1F,
            day_of_week=(value >> 17) & 0x7,
            hour=(value >> 12) & 0x1F,
            seconds=value & 0xFFF,
        )
        if not rule.valid():
            warn(f"DST rule {text!r} decodes to an impossible date ({rule}): no DST assumed")
            return None
        return rule

    def valid(self) -> bool:
        if not (1 <= self.month <= 12 and self.hour <= 23 and self.seconds < 3600):
            return False
        if self.operator == 0:
            return 1 <= self.day_of_month <= 31
        if self.operator == 1:
            return 1 <= self.day_of_month <= 31 and 1 <= self.day_of_week <= 7
        return 1 <= self.day_of_week <= 7

    def encode(self) -> str:
        value = (
            self.month << 28
            | self.operator << 25
            | self.day_of_month << 20
            | self.day_of_week << 17
            | self.hour << 12
            | self.seconds
        )
        return f"{value:08X}"

    def day(self, year: int) -> date:
        """The day of ``year`` the rule falls on."""
        last = calendar.monthrange(year, self.month)[1]
        if self.operator == 0:
            return date(year, self.month, min(self.day_of_month, last))
        want = self.day_of_week - 1  # Python: Monday = 0
        if self.operator == 1:
            d = date(year, self.month, min(self.day_of_month, last))
            return d + timedelta(days=(want - d.weekday()) % 7)
        first = date(year, self.month, 1)
        first_match = first + timedelta(days=(want - first.weekday()) % 7)
        if self.operator == 7:
            return first_match + timedelta(weeks=(last - first_match.day) // 7)
        d = first_match + timedelta(weeks=self.operator - 2)
        return d if d.month == self.month else d - timedelta(weeks=1)  # no fifth: the last

    def wall(self, year: int) -> int:
        """The rule's moment in ``year`` as wall-clock seconds since 1970-01-01 (naive)."""
        d = self.day(year)
        days = (d - EPOCH.date()).days
        return days * 86400 + self.hour * 3600 + self.seconds


class EspiZone(tzinfo):
    """A ``tzinfo`` that follows a LocalTimeParameters: standard offset, DST offset, rules."""

    def __init__(self, tz_offset: int, dst_offset: int, start: DstRule | None, end: DstRule | None):
        self.tz_offset = tz_offset
        self.dst_offset = dst_offset if start is not None and end is not None else 0
        self.start = start
        self.end = end
        self._years: dict[int, tuple[int, int]] = {}

    def __repr__(self) -> str:
        rules = (
            f"{self.start.encode()}-{self.end.encode()}" if self.start and self.end else "no DST"
        )
        return f"EspiZone(tz_offset={self.tz_offset}, dst_offset={self.dst_offset}, {rules})"

    def in_dst(self, epoch: float) -> bool:
        """Whether DST is in effect at this instant."""
        if not self.dst_offset or self.start is None or self.end is None:
            return False
        year = (EPOCH + timedelta(seconds=epoch + self.tz_offset)).year
        known = self._years.get(year)
        if known is None:
            known = self._years[year] = (
                self.start.wall(year) - self.tz_offset,
                self.end.wall(year) - self.tz_offset - self.dst_offset,
            )
        start, end = known
        if start < end:
            return start <= epoch < end
        return epoch >= start or epoch < end  # southern hemisphere: DST spans the new year

    def _offset_of_wall(self, dt: datetime) -> int:
        wall = (dt.replace(tzinfo=None) - EPOCH).total_seconds()
        as_std = wall - self.tz_offset
        as_dst = wall - self.tz_offset - self.dst_offset
        std_ok, dst_ok = not self.in_dst(as_std), self.in_dst(as_dst)
        if std_ok and dst_ok:  # the repeated hour: fold 0 is the first (daylight) one
            use_dst = dt.fold == 0
        elif not std_ok and not dst_ok:  # the skipped hour: fold 0 keeps the offset before
            use_dst = dt.fold == 1
        else:
            use_dst = dst_ok
        return self.tz_offset + (self.dst_offset if use_dst else 0)

    def utcoffset(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return timedelta(seconds=self.tz_offset)
        return timedelta(seconds=self._offset_of_wall(dt))

    def dst(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return timedelta(0)
        return timedelta(seconds=self._offset_of_wall(dt) - self.tz_offset)

    def tzname(self, dt: datetime | None) -> str:
        offset = self.utcoffset(dt).total_seconds()
        if not offset:
            return "UTC"
        sign = "-" if offset < 0 else "+"
        hours, rest = divmod(abs(int(offset)), 3600)
        return f"UTC{sign}{hours:02d}:{rest // 60:02d}"

    def fromutc(self, dt: datetime) -> datetime:
        epoch = (dt.replace(tzinfo=None) - EPOCH).total_seconds()
        daylight = self.in_dst(epoch)
        local = dt + timedelta(seconds=self.tz_offset + (self.dst_offset if daylight else 0))
        if not daylight and self.dst_offset and self.in_dst(epoch - self.dst_offset):
            local = local.replace(fold=1)  # the second time this wall-clock hour comes round
        return local


def zone(ltp: LocalTimeParameters) -> EspiZone:
    """The ``tzinfo`` of a LocalTimeParameters.

    Tolerated with a warning: a positive ``tzOffset`` with North American DST rules (real
    files get the sign wrong; those rules only occur west of Greenwich)."""
    start, end = DstRule.decode(ltp.dst_start_rule), DstRule.decode(ltp.dst_end_rule)
    tz_offset = ltp.tz_offset or 0
    if (
        tz_offset > 0
        and start is not None
        and start.month == 3
        and end is not None
        and end.month == 11
    ):
        warn(f"tzOffset {tz_offset} with North American DST rules: read as {-tz_offset}")
        tz_offset = -tz_offset
    return EspiZone(tz_offset, ltp.dst_offset or 0, start, end)


def to_local(ltp: LocalTimeParameters, epoch: int | float) -> datetime:
    """An instant as an aware local datetime."""
    return datetime.fromtimestamp(epoch, zone(ltp))


def from_local(ltp: LocalTimeParameters, local: datetime) -> int:
    """A naive local wall-clock time as epoch seconds. ``local.fold`` picks which of a repeated
    hour is meant (0: the first); a skipped time is read with the offset before the change."""
    return int(local.replace(tzinfo=zone(ltp)).timestamp())


def seconds(delta: timedelta | None) -> int:
    return int(delta.total_seconds()) if delta is not None else 0


def rule_for(day: date, seconds_of_day: int) -> DstRule:
    """The rule that names ``day``: "the n-th weekday" or "the last weekday" of its month."""
    last = calendar.monthrange(day.year, day.month)[1]
    nth = (day.day - 1) // 7 + 1
    is_last = day.day + 7 > last
    operator = 7 if is_last and nth >= 4 else nth + 1
    hour, seconds = divmod(seconds_of_day, 3600)
    return DstRule(day.month, operator, 0, day.isoweekday(), hour, seconds)


@lru_cache(maxsize=4096)
def from_zone(name: str, year: int | None = None) -> LocalTimeParameters:
    """The LocalTimeParameters of an IANA zone for a year (default: this year).

    One LocalTimeParameters holds one pair of rules, so it describes a zone for the years that
    zone kept them (US zones: 2007 on)."""
    year = year or datetime.now(UTC).year
    tz = ZoneInfo(name)
    changes = []  # (instant, offset before, offset after)
    t = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    before = t.astimezone(tz).utcoffset()
    while t < end:  # a day at a time, then the hour, then the minute of a change
        after = (t + timedelta(days=1)).astimezone(tz).utcoffset()
        if after != before:
            at = t
            for step in (timedelta(hours=1), timedelta(minutes=1)):
                while (at + step).astimezone(tz).utcoffset() == before:
                    at += step
            changes.append((at + timedelta(minutes=1), before, after))
        before, t = after, t + timedelta(days=1)
    january = datetime(year, 1, 15, tzinfo=UTC).astimezone(tz)
    standard = seconds(january.utcoffset()) - seconds(january.dst())
    if len(changes) != 2:
        return LocalTimeParameters(
            tz_offset=standard, dst_offset=0, dst_start_rule="FFFFFFFF", dst_end_rule="FFFFFFFF"
        )
    (t1, b1, a1), (t2, _, _) = changes
    gained = (a1 or timedelta(0)) - (b1 or timedelta(0))
    start_t, end_t = (t1, t2) if gained > timedelta(0) else (t2, t1)
    dst = int(abs(gained.total_seconds()))
    start_wall = start_t + timedelta(seconds=standard)  # read in standard time
    end_wall = end_t + timedelta(seconds=standard + dst)  # read in daylight time
    start = rule_for(start_wall.date(), start_wall.hour * 3600 + start_wall.minute * 60)
    finish = rule_for(end_wall.date(), end_wall.hour * 3600 + end_wall.minute * 60)
    return LocalTimeParameters(
        tz_offset=standard,
        dst_offset=dst,
        dst_start_rule=start.encode(),
        dst_end_rule=finish.encode(),
    )


def to_zone_name(ltp: LocalTimeParameters, year: int | None = None) -> str | None:
    """The IANA zone whose rules for ``year`` are these (preferring North American zones),
    or None when no zone matches."""
    year = year or datetime.now(UTC).year
    key = (
        ltp.tz_offset,
        ltp.dst_offset,
        (ltp.dst_start_rule or "").upper(),
        (ltp.dst_end_rule or "").upper(),
    )
    for name in (*PREFERRED_ZONES, *sorted(available_timezones())):
        z = from_zone(name, year)
        if (z.tz_offset, z.dst_offset, z.dst_start_rule, z.dst_end_rule) == key:
            return name
    return None
