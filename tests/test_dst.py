"""DST fall-back duplicates: two readings with one start where local time repeats."""

from __future__ import annotations

import warnings

import espi
from espi import lint

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
B = "https://u.test/espi/1_1/resource"
UP = f"{B}/Subscription/1/UsagePoint/1"
MR = f"{UP}/MeterReading/1"
# Eastern time (Hydro One): -5 h, DST +1 h, second Sunday of March, first Sunday of November
LTP = ("<dstEndRule>B40E2000</dstEndRule><dstOffset>3600</dstOffset>"
       "<dstStartRule>360E2000</dstStartRule><tzOffset>-18000</tzOffset>")  # fmt: skip
DAY = 1730606400  # 2024-11-03 00:00 EDT (04:00Z): a 25-hour day


def entry(content, self_href, related=()):
    links = f'<link rel="self" href="{self_href}"/>' + "".join(
        f'<link rel="related" href="{h}"/>' for h in related
    )
    content = content.replace(">", f' xmlns="{ESPI}">', 1)
    return f"<entry>{links}<content>{content}</content></entry>"


def day(starts, duration=90000, ltp=LTP):
    readings = "".join(
        f"<IntervalReading><timePeriod><duration>3600</duration><start>{s}</start></timePeriod>"
        f"<value>{n}</value></IntervalReading>"
        for n, s in enumerate(starts)
    )
    return (
        f'<feed xmlns="{ATOM}">'
        + entry("<UsagePoint></UsagePoint>", UP, [f"{UP}/MeterReading", f"{B}/LocalTimeParameters/1"])
        + (entry(f"<LocalTimeParameters>{ltp}</LocalTimeParameters>", f"{B}/LocalTimeParameters/1") if ltp else "")
        + entry("<ReadingType><uom>72</uom></ReadingType>", f"{B}/ReadingType/1")
        + entry("<MeterReading></MeterReading>", MR, [f"{MR}/IntervalBlock", f"{B}/ReadingType/1"])
        + entry(f"<IntervalBlock><interval><duration>{duration}</duration><start>{DAY}</start>"
                f"</interval>{readings}</IntervalBlock>", f"{MR}/IntervalBlock/1")
        + "</feed>"
    ).encode()  # fmt: skip


HOURS = [DAY + h * 3600 for h in range(25)]
# the Hydro One export: the second 01:00 (06:00Z) given the first's start (05:00Z)
FALL_BACK = [*HOURS[:2], HOURS[1], *HOURS[3:]]


def read(data):
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        return espi.parse(data), list(espi.iter_readings(data))


def test_the_second_of_two_readings_in_the_repeated_hour_becomes_that_hour():
    feed, streamed = read(day(FALL_BACK))
    assert [r.start for r in feed.readings()] == HOURS
    assert [r.start for r in streamed] == HOURS
    assert [r.value for r in feed.readings()][1:3] == [1, 2]  # both values kept, in order
    (quirk,) = [q for q in feed.quirks if q.code == "dst-duplicate"]
    assert "2024-11-03 01:00 local, the hour a DST change repeats" in quirk.message
    findings = [str(f) for f in lint.lint(day(FALL_BACK))]
    assert any("[tolerated-dst-duplicate]" in f for f in findings)
    assert not any("[overlap]" in f for f in findings)


def test_duplicates_that_are_not_a_repeated_hour_are_kept_and_reported():
    noon = [*HOURS[:12], HOURS[11], *HOURS[13:]]  # two readings at 11:00: not a DST hour
    no_zone = day(FALL_BACK, ltp="")  # the file does not say its local time
    hole_elsewhere = [*HOURS[:2], HOURS[1], *HOURS[2:10], *HOURS[11:]]  # 06:00Z is there
    for data in (day(noon), no_zone, day(hole_elsewhere)):
        feed, streamed = read(data)
        starts = [r.start for r in feed.readings()]
        assert len(starts) == 25 and len(set(starts)) == 24
        assert [r.start for r in streamed] == starts
        assert "duplicate-start" in {q.code for q in feed.quirks}
        findings = [str(f) for f in lint.lint(data)]
        assert any("[tolerated-duplicate-start]" in f for f in findings)
        assert any("[overlap]" in f for f in findings)
