"""The writer: schema-valid output, round trips (real samples and generated models), stability."""

from __future__ import annotations

import dataclasses
import io
import warnings
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

import espi
from espi import model as m
from tests.conftest import EXPECTED, all_sample_names, sample_path

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OPTS = espi.WriteOptions(now=NOW)
ENVELOPE = {"links": [], "title": None, "id": None, "published": None, "updated": None}


def quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", espi.EspiWarning)
        return fn(*args)


def data(res):
    """A resource's own content: without its Atom envelope, which the writer normalizes, and
    without the links to other resources, which the tests compare apart."""
    changes = {k: v for k, v in ENVELOPE.items() if hasattr(res, k)}
    for f in dataclasses.fields(res):
        if f.metadata.get("graph"):
            changes[f.name] = [] if isinstance(getattr(res, f.name), list) else None
    return dataclasses.replace(res, **changes)


def reading_key(feed):
    ups = feed.usage_points
    return [
        (r.start, r.duration, r.value, r.cost, r.qualities, r.tou, r.cpp, r.consumption_tier,
         data(r.reading_type) if r.reading_type else None,
         ups.index(r.usage_point) if r.usage_point in ups else None)
        for r in feed.readings()
    ]  # fmt: skip


def customer_key(feed):
    rc = feed.retail_customer
    return [[data(x) for x in getattr(rc, f.name)] for f in dataclasses.fields(rc)]


@pytest.mark.parametrize("name", [n for n in all_sample_names() if EXPECTED[n]["well_formed"]])
def test_every_sample_round_trips_to_valid_espi_4_0(name):
    original = quiet(espi.parse, sample_path(name))
    out = quiet(espi.dumps, original, OPTS)
    assert espi.validate(out) == []
    again = espi.parse(out)  # the writer's output needs no tolerance at all
    assert again.quirks == []
    assert reading_key(again) == reading_key(original)
    assert [data(s) for s in again.usage_summaries] == [data(s) for s in original.usage_summaries]
    assert customer_key(again) == customer_key(original)
    assert sorted(map(repr, map(data, again.local_time_parameters))) == sorted(
        map(repr, map(data, original.local_time_parameters))
    )
    ltp = [
        up.local_time_parameters and data(up.local_time_parameters) for up in original.usage_points
    ]
    assert [
        up.local_time_parameters and data(up.local_time_parameters) for up in again.usage_points
    ] == ltp


def test_output_is_stable_and_ids_derive_from_links(sample):
    feed = quiet(espi.parse, sample("threeusagepointsthreecustomer.xml"))
    first, second = espi.dumps(feed, OPTS), espi.dumps(feed, OPTS)
    assert first == second
    bare = dataclasses.replace(feed.usage_points[0], id=None)
    one = espi.dumps(bare, OPTS)
    assert one == espi.dumps(bare, OPTS)
    assert b"urn:uuid:" in one


def test_links_follow_the_espi_rest_paths():
    up = m.UsagePoint(service_category=m.ServiceCategory(kind=espi.ServiceKind.GAS))
    rt = m.ReadingType(
        uom=espi.UnitSymbolKind.THERM, links=[m.Link(rel="self", href="x/ReadingType/g1")]
    )
    mr = m.MeterReading(reading_type=rt, usage_point=up)
    up.meter_readings.append(mr)
    block = m.IntervalBlock(
        meter_reading=mr, readings=[m.IntervalReading(start=0, duration=86400, value=5)]
    )
    mr.interval_blocks.append(block)
    feed = m.Feed(usage_points=[up], meter_readings=[mr], reading_types=[rt], interval_blocks=[block],
                  entries=[up, rt, mr, block])  # fmt: skip
    opts = espi.WriteOptions(
        base="https://pge.test/GreenButtonConnect/espi/1_1/resource", subscription="77", now=NOW
    )
    again = espi.parse(espi.dumps(feed, opts))
    base = "https://pge.test/GreenButtonConnect/espi/1_1/resource"
    up2 = again.usage_points[0]
    assert up2.link("self") == f"{base}/Subscription/77/UsagePoint/1"
    assert up2.link("up") == f"{base}/Subscription/77/UsagePoint"
    mr2 = up2.meter_readings[0]
    assert mr2.link("self") == f"{base}/Subscription/77/UsagePoint/1/MeterReading/1"
    assert f"{base}/ReadingType/g1" in mr2.related()
    assert mr2.interval_blocks[0].link("up") == f"{mr2.link('self')}/IntervalBlock"
    assert next(again.readings()).unit == "therm"


def test_usage_points_of_several_subscriptions_keep_theirs():
    ups = [
        m.UsagePoint(
            links=[m.Link(rel="self", href=f"https://x.test/r/Subscription/{sid}/UsagePoint/{uid}")]
        )
        for sid, uid in (("7", "a"), ("8", "b"))
    ]
    again = espi.parse(espi.dumps(ups, espi.WriteOptions(base="https://c.test/r", now=NOW)))
    assert [up.link("self") for up in again.usage_points] == [
        "https://c.test/r/Subscription/7/UsagePoint/a",
        "https://c.test/r/Subscription/8/UsagePoint/b",
    ]


@pytest.mark.parametrize(
    "obj",
    [
        m.BatchList(resources=["https://utility.test/espi/1_1/resource/Batch/Bulk/1"]),
        m.ServiceStatus(current_status=espi.ESPIServiceStatus.NORMAL),
        m.LocalTimeParameters(
            dst_end_rule="B40E2000", dst_offset=3600, dst_start_rule="360E2000", tz_offset=-28800
        ),
        [m.ReadingType(uom=espi.UnitSymbolKind.WH), m.ReadingType(uom=espi.UnitSymbolKind.W)],
    ],
)
def test_other_documents_are_valid(obj):
    out = espi.dumps(obj, OPTS)
    assert espi.validate(out) == []
    parsed = espi.parse(out)
    if isinstance(obj, m.BatchList):
        assert parsed.batch_list == obj
    elif isinstance(obj, m.ServiceStatus):
        assert parsed.service_status == obj
    elif isinstance(obj, list):
        assert [data(x) for x in parsed.reading_types] == obj
    else:
        assert data(parsed.local_time_parameters[0]) == obj


def test_incomplete_application_information_is_left_out_with_a_warning():
    with pytest.warns(
        espi.EspiWarning,
        match="ApplicationInformation left out: dataCustodianId, which ESPI 4.0 requires",
    ):
        out = espi.dumps([m.ApplicationInformation(client_name="x")], OPTS)
    assert espi.parse(out).application_information == []


def test_unknown_elements_are_written_back_only_when_asked():
    doc = (
        b'<entry xmlns="http://www.w3.org/2005/Atom"><content><UsagePoint xmlns="http://naesb.org/espi">'
        b"<status>1</status><futureThing>7</futureThing></UsagePoint></content></entry>"
    )
    up = quiet(espi.parse, doc).usage_points[0]
    assert b"futureThing" not in espi.dumps(up, OPTS)
    kept = espi.dumps(up, espi.WriteOptions(now=NOW, keep_unknown=True))
    assert quiet(espi.parse, kept).usage_points[0].extra == up.extra


def test_write_to_a_path_is_atomic(tmp_path):
    target = tmp_path / "out.xml"
    espi.write([m.ReadingType(uom=espi.UnitSymbolKind.WH)], target, OPTS)
    assert espi.validate(target) == []
    with pytest.raises(TypeError):
        espi.write(object(), tmp_path / "bad.xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.xml"]


def test_feed_writer_streams_entries():
    out = io.BytesIO()
    mr = m.MeterReading()
    with espi.FeedWriter(out, OPTS, title="Bulk") as w:
        w.add(mr)
        for day in range(30):
            readings = [
                m.IntervalReading(start=day * 86400 + h * 3600, duration=3600, value=h)
                for h in range(24)
            ]
            w.add(m.IntervalBlock(meter_reading=mr, readings=readings))
    assert espi.validate(out.getvalue()) == []
    assert sum(1 for _ in espi.iter_readings(out.getvalue())) == 30 * 24


def test_the_feed_writer_remembers_the_blocks_of_the_last_meter_readings_only():
    """Streaming stays flat: the writer once remembered every block's id (~240 bytes a block,
    8.6 MiB over 3.5 M readings); now those of the last few meter readings, and how many each
    was given, so ids stay unique however blocks interleave."""
    from espi import writer

    out = io.BytesIO()
    mrs = [m.MeterReading() for _ in range(40)]
    with espi.FeedWriter(out, OPTS) as w:
        w.add_all(mrs)
        for day in range(5):
            for mr in mrs:  # interleaved, without self links: numbered
                reading = m.IntervalReading(start=day * 86400, duration=3600, value=day)
                w.add(m.IntervalBlock(meter_reading=mr, readings=[reading]))
        assert len(w.entries.plan.block_segments) == writer.BLOCK_COLLECTIONS
    hrefs = [b.link("self") for b in espi.parse(out.getvalue()).interval_blocks]
    assert len(set(hrefs)) == len(hrefs) == 200


# --------------------------------------------------------------------------- generated models

int48 = st.integers(min_value=-(2**47), max_value=2**47 - 1)
uint32 = st.integers(min_value=0, max_value=2**32 - 1)
text = (
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=20)
    .map(str.strip)
    .filter(bool)
)
period = st.builds(m.DateTimeInterval, duration=uint32, start=uint32)
measurement = st.builds(
    m.SummaryMeasurement,
    power_of_ten_multiplier=st.sampled_from(list(espi.UnitMultiplierKind)),
    time_stamp=st.none() | uint32,
    uom=st.sampled_from([espi.UnitSymbolKind.WH, espi.UnitSymbolKind.THERM]),
    value=int48,
)
line_item = st.builds(
    m.LineItem, amount=int48, note=text, item_kind=st.sampled_from(list(espi.ItemKind)),
    item_period=st.none() | period, measurement=st.none() | measurement,
)  # fmt: skip
reading = st.builds(
    m.IntervalReading,
    start=uint32, duration=uint32, value=int48, cost=st.none() | int48,
    qualities=st.lists(st.sampled_from(list(espi.QualityOfReading)), max_size=2).map(tuple),
    tou=st.none() | st.integers(0, 5), cpp=st.none() | st.integers(0, 5),
    consumption_tier=st.none() | st.integers(0, 5),
)  # fmt: skip
reading_type = st.builds(
    m.ReadingType,
    accumulation_behaviour=st.none() | st.sampled_from(list(espi.AccumulationKind)),
    commodity=st.none() | st.sampled_from(list(espi.CommodityKind)),
    currency=st.none() | st.sampled_from(list(espi.Currency)),
    flow_direction=st.none() | st.sampled_from(list(espi.FlowDirectionKind)),
    interval_length=st.none() | uint32,
    kind=st.none() | st.sampled_from(list(espi.MeasurementKind)),
    power_of_ten_multiplier=st.none() | st.sampled_from(list(espi.UnitMultiplierKind)),
    uom=st.sampled_from(list(espi.UnitSymbolKind)),
)
summary = st.builds(
    m.UsageSummary,
    billing_period=period, bill_last_period=st.none() | int48, bill_to_date=st.none() | int48,
    cost_additional_detail_last_period=st.lists(line_item, max_size=3),
    currency=st.none() | st.sampled_from(list(espi.Currency)),
    overall_consumption_last_period=st.none() | measurement,
    status_time_stamp=uint32, tariff_profile=st.none() | text,
)  # fmt: skip


def start_of(r):
    """One reading per start in a block (two at one start are a quirk the reader reports)."""
    return r.start


@st.composite
def feeds(draw):
    feed = m.Feed()
    for _ in range(draw(st.integers(1, 2))):
        up = m.UsagePoint(
            service_category=m.ServiceCategory(kind=draw(st.sampled_from(list(espi.ServiceKind)))),
            status=draw(st.none() | st.integers(0, 1)),
            check_billing=draw(st.none() | st.booleans()),
            read_cycle=draw(st.none() | text),
        )
        feed.usage_points.append(up)
        feed.entries.append(up)
        for _ in range(draw(st.integers(0, 2))):
            rt = draw(reading_type)
            mr = m.MeterReading(reading_type=rt, usage_point=up)
            up.meter_readings.append(mr)
            feed.meter_readings.append(mr)
            feed.reading_types.append(rt)
            feed.entries += [rt, mr]
            for _ in range(draw(st.integers(0, 2))):
                block = m.IntervalBlock(
                    meter_reading=mr,
                    interval=draw(st.none() | period),
                    readings=draw(st.lists(reading, min_size=1, max_size=4, unique_by=start_of)),
                )
                mr.interval_blocks.append(block)
                feed.interval_blocks.append(block)
                feed.entries.append(block)
        for s in draw(st.lists(summary, max_size=2)):
            s.usage_point = up
            up.usage_summaries.append(s)
            feed.usage_summaries.append(s)
            feed.entries.append(s)
    return feed


def graph(feed):
    return [
        (data(up), [(data(mr.reading_type), [data(b) for b in mr.interval_blocks]) for mr in up.meter_readings],
         [data(s) for s in up.usage_summaries])
        for up in feed.usage_points
    ]  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(feeds())
def test_parse_dumps_is_the_identity_on_the_model(feed):
    out = espi.dumps(feed, OPTS)
    again = espi.parse(out)
    assert graph(again) == graph(feed)
    assert espi.validate(out) == []


any_number = st.none() | st.integers(-(2**64), 2**64)
any_reading = st.builds(
    m.IntervalReading,
    start=any_number, duration=any_number, value=any_number, cost=any_number,
    qualities=st.lists(st.integers(-2, 70_000).map(espi.QualityOfReading), max_size=2).map(tuple),
    tou=any_number, cpp=any_number, consumption_tier=any_number,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(any_reading, max_size=4), st.booleans(), st.none() | period)
def test_readings_written_as_text_are_the_markup_lxml_makes(readings, pretty, interval):
    """Readings are written as text (an lxml element per number cost three times as much):
    the same bytes lxml makes of the same elements, and the numbers in range read back."""
    block = m.IntervalBlock(interval=interval, readings=readings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", espi.EspiWarning)
        data = espi.dumps(block, espi.WriteOptions(now=NOW, pretty=pretty))
    tree = etree.fromstring(data, etree.XMLParser(remove_blank_text=True))
    again = etree.tostring(tree, xml_declaration=True, encoding="utf-8", pretty_print=pretty)
    assert data == again
    assert espi.validate(data) == []
    read = espi.parse(data, espi.ParseOptions(warn=False)).interval_blocks[0].readings
    assert len(read) == len(readings)
    for got, given_ in zip(read, readings, strict=True):
        for field, (low, high) in (("value", (-(2**47), 2**47)), ("cost", (-(2**47), 2**47)),
                                   ("tou", (-(2**15), 2**15 - 1))):  # fmt: skip
            expected = getattr(given_, field)
            kept = expected is not None and low <= expected <= high
            assert getattr(got, field) == (expected if kept else None)
        assert got.qualities == tuple(q for q in given_.qualities if 0 <= q <= 0xFFFF)
    out_of_range = any(
        v is not None and not -(2**47) <= v <= 2**47 for r in readings for v in (r.value, r.cost)
    )
    assert not out_of_range or any("out of range" in str(w.message) for w in caught)
