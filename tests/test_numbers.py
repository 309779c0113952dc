"""One outcome per input: every number and date is range-checked where it is read; mutated real
samples give a model or a ParseError, never another exception."""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings

import pytest
from lxml import etree

import espi
from espi import ParseOptions, export, lint
from espi import model as m
from espi.xmlmap import INT_TYPES, RANGES, field_specs
from tests.conftest import HERE

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
XS = "{http://www.w3.org/2001/XMLSchema}"


B = "https://u.test/espi/1_1/resource"
UP = f"{B}/Subscription/1/UsagePoint/1"
MR = f"{UP}/MeterReading/1"


def entry(content, self_href, related=()):
    links = f'<link rel="self" href="{self_href}"/>' + "".join(
        f'<link rel="related" href="{h}"/>' for h in related
    )
    content = content.replace(">", f' xmlns="{ESPI}">', 1)
    return f"<entry>{links}<content>{content}</content></entry>"


def doc(reading="", reading_type="", updated="2024-01-01T00:00:00Z", tz="-28800"):
    ltp = (
        "<dstEndRule>B40E2000</dstEndRule><dstOffset>3600</dstOffset>"
        f"<dstStartRule>360E2000</dstStartRule><tzOffset>{tz}</tzOffset>"
    )
    return (
        f'<feed xmlns="{ATOM}"><id>urn:uuid:f</id><updated>{updated}</updated>'
        + entry("<UsagePoint><ServiceCategory><kind>0</kind></ServiceCategory></UsagePoint>", UP,
                [f"{UP}/MeterReading", f"{B}/LocalTimeParameters/1"])
        + entry(f"<LocalTimeParameters>{ltp}</LocalTimeParameters>", f"{B}/LocalTimeParameters/1")
        + entry(f"<ReadingType><uom>72</uom>{reading_type}</ReadingType>", f"{B}/ReadingType/1")
        + entry("<MeterReading></MeterReading>", MR, [f"{MR}/IntervalBlock", f"{B}/ReadingType/1"])
        + entry(f"<IntervalBlock><IntervalReading>{reading}</IntervalReading></IntervalBlock>",
                f"{MR}/IntervalBlock/1")
        + "</feed>"
    ).encode()  # fmt: skip


def period(start="1700000000", duration="3600"):
    return f"<timePeriod><duration>{duration}</duration><start>{start}</start></timePeriod>"


# (document, where the value lands, what the reader makes of it, quirk code)
CASES = {
    "value 1e400": (doc(period() + "<value>1e400</value>"), "value", None, "out-of-range"),
    "value inf": (doc(period() + "<value>inf</value>"), "value", None, "bad-number"),
    "value NaN": (doc(period() + "<value>NaN</value>"), "value", None, "bad-number"),
    "value 20 digits": (
        doc(period() + "<value>12345678901234567890</value>"), "value", None, "out-of-range"
    ),
    "value 5000 digits": (doc(period() + f"<value>{'9' * 5000}</value>"), "value", None,
                          "out-of-range"),
    "value beyond Int48": (doc(period() + "<value>140737488355329</value>"), "value", None,
                           "out-of-range"),
    "value at Int48": (doc(period() + "<value>-140737488355328</value>"), "value",
                       -140737488355328, None),
    "value fraction": (doc(period() + "<value>12.9</value>"), "value", 12, "fractional-number"),
    "cost 1e30": (doc(period() + "<cost>1E30</cost><value>1</value>"), "cost", None,
                  "out-of-range"),
    "tou beyond Int16": (doc(period() + "<value>1</value><tou>32768</tou>"), "tou", None,
                         "out-of-range"),
    "quality beyond UInt16": (
        doc("<ReadingQuality><quality>65536</quality></ReadingQuality>" + period()),
        "qualities", (), "out-of-range",
    ),
    "year 10000 (seconds, read as milliseconds)": (
        doc(period(start="253402300800") + "<value>1</value>"), "start", 253402300, "milliseconds"
    ),
    "year 0": (doc(period(start="-62167219200") + "<value>1</value>"), "start", None,
               "out-of-range"),
    "start beyond xs:long": (doc(period(start="99999999999999999999") + "<value>1</value>"),
                             "start", None, "out-of-range"),
    "negative duration": (doc(period(duration="-900") + "<value>1</value>"), "duration", None,
                          "out-of-range"),
    "power of ten 400": (doc(period() + "<value>1</value>",
                             "<powerOfTenMultiplier>400</powerOfTenMultiplier>"),
                         "power", None, "out-of-range"),
    "power of ten 12 (tera, the list's end)": (
        doc(period() + "<value>1</value>", "<powerOfTenMultiplier>12</powerOfTenMultiplier>"),
        "power", espi.UnitMultiplierKind.TERA, None,
    ),
    "negative intervalLength": (doc(period() + "<value>1</value>", "<intervalLength>-1</intervalLength>"),
                  "interval_length", None, "out-of-range"),
    "updated year 0": (doc(period() + "<value>1</value>", updated="0000-01-01T00:00:00Z"),
                       "updated", None, "bad-timestamp"),
    "updated year 10000": (doc(period() + "<value>1</value>", updated="10000-01-01T00:00:00Z"),
                           "updated", None, "bad-timestamp"),
    "updated 0001-01-01 at +14:00": (
        doc(period() + "<value>1</value>", updated="0001-01-01T00:00:00+14:00"),
        "updated", None, "out-of-range",
    ),
    "tzOffset of a century": (doc(period() + "<value>1</value>",
                                  tz="3155760000"),
                              "tz_offset", None, "out-of-range"),
}  # fmt: skip


def landed(feed, where):
    r = next(feed.readings())
    if where == "power":
        return feed.reading_types[0].power_of_ten_multiplier
    if where == "interval_length":
        return feed.reading_types[0].interval_length
    if where == "updated":
        return feed.updated
    if where == "tz_offset":
        return feed.local_time_parameters[0].tz_offset
    return getattr(r, where)


@pytest.mark.parametrize("case", CASES)
def test_numbers_and_dates_out_of_range_are_a_quirk_or_a_parse_error(case):
    data, where, expected, code = CASES[case]
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        feed = espi.parse(data)
        streamed = list(espi.iter_readings(data))
    assert landed(feed, where) == expected
    assert len(streamed) == 1  # the reading is kept; only the bad number is absent
    codes = {q.code for q in feed.quirks}
    if code is None:
        assert not codes
        return
    assert code in codes
    with pytest.raises(espi.ParseError) as info:
        espi.parse(data, ParseOptions(strict=True))
    assert info.value.line is not None
    # whatever was read, the consumers cope: summary lines, export rows, lint, the writer
    lint.lint(data)
    for r in feed.readings():
        export.row(r)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", espi.EspiWarning)  # what the writer had to leave out
        assert espi.validate(espi.dumps(feed)) == []


def test_the_integer_table_matches_the_schemas():
    """Each integer element's range in the reader is its type in espi.xsd / customer.xsd."""
    declared: dict[str, set[str]] = {}
    for name in ("espi.xsd", "customer.xsd"):
        tree = etree.parse(str(HERE.parent / "xsd" / "espi-4.0" / name))
        for el in tree.iter(XS + "element"):
            if el.get("name") and el.get("type"):
                declared.setdefault(el.get("name"), set()).add(el.get("type").split(":")[-1])
    read_as_written = {"TimeType (s or ms)": "TimeType", "UInt32 (s or ms)": "UInt32"}
    offsets = {"tzOffset", "dstOffset"}  # TimeType offsets, kept to what a UTC offset can be
    for cls in (c for c in vars(m).values() if dataclasses.is_dataclass(c)):
        for name, spec in field_specs(cls).items():
            if spec.kind is not int:
                continue
            kind = read_as_written.get(spec.int_type, spec.int_type)
            types = declared.get(name, set())
            if name in offsets:
                assert types == {"TimeType"}
            elif kind == "long":  # undeclared integers (xs:integer): at least bounded
                assert not types & set(RANGES), (cls.__name__, name, types)
            else:
                assert kind in types, (cls.__name__, name, kind, types)
    assert set(INT_TYPES.values()) <= set(RANGES)


def test_mutated_samples_give_a_model_or_a_parse_error():
    """A few thousand mutations of the real samples (tools/fuzz.py runs 100,000)."""
    sys.path.insert(0, str(HERE.parent / "tools"))
    try:
        import fuzz
    finally:
        sys.path.pop(0)
    seed = int(os.environ.get("FUZZ_SEED", "20260"))
    lines: list[str] = []
    outcomes = fuzz.run(3000, seed, report=lines.append)
    assert set(outcomes) <= {"ok", "ParseError"}, "\n".join(lines)
    assert outcomes["ok"] > 500  # most mutations reach past the XML parser


def test_the_writers_integer_ranges_agree_with_the_schema():
    """The writer checks an integer of a plain range itself (xmlschema took ~40 µs a value,
    a tenth of writing a feed): for every integer type of the schemas, the same verdicts."""
    from espi.schema import load_schema
    from espi.writer import integer_range, valid_text

    checked = 0
    for xsd in load_schema("4.0").maps.types.values():
        if not xsd.is_simple() or integer_range(xsd) is None:
            continue
        low, high = integer_range(xsd)
        probes = {0, 1, -1, 2**63, -(2**63) - 1, 2**47, -(2**47)}
        probes |= {v + d for v in (low, high) if v is not None for d in (-1, 0, 1)}
        for value in probes:
            assert valid_text(xsd, value, str(value)) == xsd.is_valid(str(value)), (xsd, value)
        checked += 1
    assert checked >= 10  # UInt8 ... Int48, TimeType and the built-in integer types
