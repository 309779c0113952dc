"""The reader on purpose-made documents: linking, tolerated quirks, strictness, odd roots."""

from __future__ import annotations

import io
import warnings

import pytest

import espi
from espi import ParseOptions

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
BASE = "https://utility.test/espi/1_1/resource"


def reading(start, value, cost=None, quality=None, duration=3600, p="espi:"):
    extra = f"<{p}cost>{cost}</{p}cost>" if cost is not None else ""
    if quality is not None:
        extra += f"<{p}ReadingQuality><{p}quality>{quality}</{p}quality></{p}ReadingQuality>"
    return (
        f"<{p}IntervalReading>{extra}<{p}timePeriod><{p}duration>{duration}</{p}duration>"
        f"<{p}start>{start}</{p}start></{p}timePeriod><{p}value>{value}</{p}value></{p}IntervalReading>"
    )


def entry(content, self_href=None, up=None, related=(), ns="espi:"):
    links = ""
    if self_href:
        links += f'<link rel="self" href="{self_href}"/>'
    if up:
        links += f'<link rel="up" href="{up}"/>'
    links += "".join(f'<link rel="related" href="{h}"/>' for h in related)
    return f"<entry><id>urn:uuid:x</id>{links}<content>{content}</content></entry>"


def feed(*entries):
    return (
        f'<feed xmlns="{ATOM}" xmlns:espi="{ESPI}"><id>urn:uuid:f</id><title>t</title>'
        f"<updated>2024-01-01T00:00:00Z</updated>{''.join(entries)}</feed>"
    ).encode()


def quiet_parse(data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", espi.EspiWarning)
        return espi.parse(data, ParseOptions(**kw))


def two_meter_feed():
    """Two usage points whose blocks are interleaved: only links can tell them apart."""
    out = []
    for n in (1, 2):
        up = f"{BASE}/Subscription/1/UsagePoint/{n}"
        out.append(
            entry(
                f"<espi:UsagePoint><espi:ServiceCategory><espi:kind>{n - 1}</espi:kind>"
                "</espi:ServiceCategory></espi:UsagePoint>",
                up,
                f"{BASE}/Subscription/1/UsagePoint",
                [f"{up}/MeterReading"],
            )
        )
        out.append(
            entry(
                "<espi:ReadingType><espi:powerOfTenMultiplier>-3</espi:powerOfTenMultiplier>"
                f"<espi:uom>{72 if n == 1 else 169}</espi:uom></espi:ReadingType>",
                f"{BASE}/ReadingType/{n}",
            )
        )
        out.append(
            entry(
                "<espi:MeterReading/>",
                f"{up}/MeterReading/1",
                f"{up}/MeterReading",
                [f"{up}/MeterReading/1/IntervalBlock", f"{BASE}/ReadingType/{n}"],
            )
        )
    for day in range(2):
        for n in (1, 2):
            mr = f"{BASE}/Subscription/1/UsagePoint/{n}/MeterReading/1"
            out.append(
                entry(
                    "<espi:IntervalBlock>"
                    f"{reading(day * 3600, n * 1000 + day)}</espi:IntervalBlock>",
                    f"{mr}/IntervalBlock/{day}",
                    f"{mr}/IntervalBlock",
                )
            )
    return feed(*out)


def test_links_tie_interleaved_blocks_to_their_usage_points():
    parsed = espi.parse(two_meter_feed())
    assert not parsed.quirks
    assert [up.kind for up in parsed.usage_points] == [
        espi.ServiceKind.ELECTRICITY,
        espi.ServiceKind.GAS,
    ]
    gas = parsed.usage_points[1]
    assert [r.value for r in gas.readings()] == [2000, 2001]
    assert all(r.unit == "therm" and r.usage_point is gas for r in gas.readings())
    assert next(gas.readings()).quantity == pytest.approx(2.0)


def test_streaming_gives_the_same_context_as_parse():
    streamed = [(r.usage_point.kind, r.unit, r.value) for r in espi.iter_readings(two_meter_feed())]
    assert streamed == [
        (espi.ServiceKind.ELECTRICITY, "Wh", 1000),
        (espi.ServiceKind.GAS, "therm", 2000),
        (espi.ServiceKind.ELECTRICITY, "Wh", 1001),
        (espi.ServiceKind.GAS, "therm", 2001),
    ]


def test_reading_fields_and_helpers():
    doc = feed(
        entry(
            "<espi:ReadingType><espi:currency>840</espi:currency>"
            "<espi:powerOfTenMultiplier>-3</espi:powerOfTenMultiplier><espi:uom>72</espi:uom>"
            "</espi:ReadingType>"
        ),
        entry("<espi:MeterReading/>"),
        entry(
            "<espi:IntervalBlock><espi:interval><espi:duration>7200</espi:duration>"
            "<espi:start>1700000000</espi:start></espi:interval>"
            f"{reading(1700000000, 1500, cost=12345, quality=17)}</espi:IntervalBlock>"
        ),
    )
    (r,) = list(quiet_parse(doc).readings())
    assert (r.start, r.duration, r.value, r.cost) == (1700000000, 3600, 1500, 12345)
    assert r.qualities == (espi.QualityOfReading.VALIDATED,)
    assert r.start_datetime.isoformat() == "2023-11-14T22:13:20+00:00"
    assert r.end == 1700003600
    assert r.quantity == pytest.approx(1.5) and r.unit == "Wh"
    assert r.cost_amount == pytest.approx(0.12345)
    assert r.block.interval.duration == 7200


def test_files_without_links_are_tied_by_document_order_and_say_so():
    doc = feed(
        entry("<espi:UsagePoint/>"),
        entry("<espi:MeterReading/>"),
        entry(f"<espi:IntervalBlock>{reading(0, 5)}</espi:IntervalBlock>"),
        entry("<espi:ReadingType><espi:uom>72</espi:uom></espi:ReadingType>"),
    )
    parsed = quiet_parse(doc)
    (r,) = list(parsed.readings())
    assert r.usage_point is parsed.usage_points[0]
    assert r.unit == "Wh"
    (r,) = list(espi.iter_readings(doc, ParseOptions(warn=False)))
    assert r.unit == "Wh", "the block waits for the reading type that follows it"


def test_placeholder_hrefs_and_equal_ids_do_not_break_linking():
    same = "https://???????/espi/1_1/resource/???????"
    doc = feed(
        entry("<espi:UsagePoint/>", same, same),
        entry("<espi:ReadingType><espi:uom>169</espi:uom></espi:ReadingType>", same, same),
        entry("<espi:MeterReading/>", same, same),
        entry(f"<espi:IntervalBlock>{reading(0, 7)}</espi:IntervalBlock>", same, same),
    )
    parsed = quiet_parse(doc)
    (r,) = list(parsed.readings())
    assert r.unit == "therm" and r.usage_point is parsed.usage_points[0]


def test_blocks_that_belong_to_nothing_are_still_read():
    doc = feed(entry(f"<espi:IntervalBlock>{reading(0, 1)}{reading(3600, 2)}</espi:IntervalBlock>"))
    parsed = quiet_parse(doc)
    assert [r.value for r in parsed.readings()] == [1, 2]
    assert parsed.readings().__next__().usage_point is None


@pytest.mark.parametrize(
    "prolog, root_open, ns",
    [
        ("", f'<feed xmlns="{ATOM}">', f'xmlns="{ESPI}"'),
        ('<?xml version="1.0"?>', f'<a:feed xmlns:a="{ATOM}">', f'xmlns:ns0="{ESPI}"'),
        ("\ufeff", f'<ns1:feed xmlns:ns1="{ATOM}">', f'xmlns="{ESPI}"'),
        (
            '<?xml-stylesheet type="text/xsl" href="x.xslt"?><!-- c -->',
            f'<feed xmlns="{ATOM}">',
            f'xmlns="{ESPI}"',
        ),
    ],
)
def test_any_prefix_bom_stylesheet_or_missing_declaration(prolog, root_open, ns):
    prefix = "ns0:" if "ns0" in ns else ""
    atom_prefix = root_open[1 : root_open.index("feed")]
    body = (
        f"<{atom_prefix}entry><{atom_prefix}content>"
        f"<{prefix}IntervalBlock {ns}><{prefix}IntervalReading><{prefix}value>42</{prefix}value>"
        f"</{prefix}IntervalReading></{prefix}IntervalBlock>"
        f"</{atom_prefix}content></{atom_prefix}entry>"
    )
    close = f"</{atom_prefix}feed>"
    doc = (prolog + root_open + body + close).encode("utf-8")
    assert [r.value for r in espi.iter_readings(doc)] == [42]


def test_quirks_are_warned_once_per_kind_and_counted():
    doc = feed(
        entry(
            "<espi:UsagePoint><espi:ServiceDeliveryPoint><espi:name>x</espi:name>"
            "</espi:ServiceDeliveryPoint><espi:futureThing>1</espi:futureThing></espi:UsagePoint>"
        ),
        entry(
            "<espi:IntervalBlock><espi:IntervalReading><espi:cost/><espi:value>1.5</espi:value>"
            "</espi:IntervalReading><espi:IntervalReading><espi:cost/><espi:value>2</espi:value>"
            "</espi:IntervalReading></espi:IntervalBlock>"
        ),
    )
    with pytest.warns(espi.EspiWarning) as caught:
        parsed = espi.parse(doc)
    codes = {q.code: q for q in parsed.quirks}
    assert set(codes) == {
        "legacy-name-ServiceDeliveryPoint",
        "unknown-element-futureThing",
        "empty-element",
        "fractional-number",
    }
    assert codes["empty-element"].count == 2
    assert len(caught) == 4
    assert "/feed/entry[1]/content/UsagePoint/ServiceDeliveryPoint" in str(
        codes["legacy-name-ServiceDeliveryPoint"]
    )
    up = parsed.usage_points[0]
    assert up.service_delivery_point.name == "x"
    assert up.extra == ['<n0:futureThing xmlns:n0="http://naesb.org/espi">1</n0:futureThing>']
    assert [r.value for r in parsed.readings()] == [1, 2]


def test_strict_mode_refuses_the_first_deviation():
    doc = feed(entry("<espi:UsagePoint><espi:ServiceDeliveryPoint/></espi:UsagePoint>"))
    with pytest.raises(espi.ParseError, match="legacy element name") as info:
        espi.parse(doc, ParseOptions(strict=True))
    assert info.value.line == 1


def test_timestamps_date_only_and_without_zone_are_read_as_utc():
    doc = (
        f'<feed xmlns="{ATOM}"><updated>2024-06-21</updated>'
        f"<entry><published>2016-07-07T02:19:27</published><content>"
        f'<UsagePoint xmlns="{ESPI}"/></content></entry></feed>'
    ).encode()
    parsed = quiet_parse(doc)
    assert parsed.updated.isoformat() == "2024-06-21T00:00:00+00:00"
    assert parsed.usage_points[0].published.isoformat() == "2016-07-07T02:19:27+00:00"
    assert {q.code for q in parsed.quirks} == {"date-only-timestamp", "timestamp-without-zone"}


def test_customer_resources_and_legacy_summary():
    doc = (
        f'<feed xmlns="{ATOM}" xmlns:cust="http://naesb.org/espi/customer">'
        "<entry><content><cust:CustomerAccount><cust:accountId>A-1</cust:accountId>"
        "</cust:CustomerAccount></content></entry>"
        "<entry><content><cust:ServiceLocation><cust:mainAddress><cust:townDetail>"
        "<cust:name>Anytown</cust:name></cust:townDetail></cust:mainAddress>"
        "<cust:UsagePoints><cust:UsagePoint>UsagePoint/1</cust:UsagePoint>"
        "<cust:UsagePoint>UsagePoint/2</cust:UsagePoint></cust:UsagePoints>"
        "</cust:ServiceLocation></content></entry>"
        f'<entry><content><ElectricPowerUsageSummary xmlns="{ESPI}"><billLastPeriod>17418000'
        "</billLastPeriod><costAdditionalDetailLastPeriod><amount>100</amount><note>tax</note>"
        "<itemKind>7</itemKind></costAdditionalDetailLastPeriod><statusTimeStamp>1</statusTimeStamp>"
        "</ElectricPowerUsageSummary></content></entry></feed>"
    ).encode()
    parsed = espi.parse(doc)
    rc = parsed.retail_customer
    assert rc.accounts[0].account_id == "A-1"
    assert rc.service_locations[0].main_address.town_detail.name == "Anytown"
    assert rc.service_locations[0].usage_points == ["UsagePoint/1", "UsagePoint/2"]
    (bill,) = parsed.usage_summaries
    assert bill.legacy_element and bill.bill_last_period == 17418000
    assert bill.cost_additional_detail_last_period[0].item_kind == 7


def test_espi_resource_in_the_customer_namespace_is_read_and_reported():
    doc = (
        f'<entry xmlns="{ATOM}"><content><UsagePoint xmlns="http://naesb.org/espi/customer">'
        "<ServiceCategory><kind>1</kind></ServiceCategory></UsagePoint></content></entry>"
    ).encode()
    parsed = quiet_parse(doc)
    assert parsed.usage_points[0].kind == espi.ServiceKind.GAS
    assert [q.code for q in parsed.quirks] == ["resource-namespace"]


@pytest.mark.parametrize(
    "doc, check",
    [
        (
            f'<ServiceStatus xmlns="{ESPI}"><currentStatus>1</currentStatus></ServiceStatus>',
            lambda f: f.service_status.current_status == espi.ESPIServiceStatus.NORMAL,
        ),
        (
            f'<BatchList xmlns="{ESPI}"><resources>https://a/1</resources><resources>https://a/2</resources></BatchList>',
            lambda f: f.batch_list.resources == ["https://a/1", "https://a/2"],
        ),
        (
            f'<IntervalBlock xmlns="{ESPI}">{reading(0, 9, p="")}</IntervalBlock>',
            lambda f: [r.value for r in f.readings()] == [9],
        ),
        (
            f'<entry xmlns="{ATOM}"><content><LocalTimeParameters xmlns="{ESPI}">'
            "<dstEndRule>B40E2000</dstEndRule>"
            "<dstOffset>3600</dstOffset><dstStartRule>360E2000</dstStartRule><tzOffset>-28800</tzOffset>"
            "</LocalTimeParameters></content></entry>",
            lambda f: f.local_time_parameters[0].tz_offset == -28800,
        ),
    ],
)
def test_documents_that_are_not_feeds(doc, check):
    assert check(espi.parse(doc.encode()))


def test_sources_path_bytes_and_binary_file(tmp_path):
    data = two_meter_feed()
    path = tmp_path / "f.xml"
    path.write_bytes(data)
    expected = [r.value for r in espi.parse(data).readings()]
    for source in (path, str(path), io.BytesIO(data), bytearray(data)):
        assert [r.value for r in espi.parse(source).readings()] == expected
    with pytest.raises(TypeError, match="path, bytes or a binary file"):
        espi.parse(12)


def test_progress_is_reported():
    seen = []
    espi.parse(two_meter_feed(), ParseOptions(progress=seen.append))
    assert seen and seen[-1] == len(two_meter_feed())


def test_unknown_codes_are_kept():
    doc = feed(
        entry(
            "<espi:ReadingType><espi:uom>9999</espi:uom><espi:kind>12</espi:kind></espi:ReadingType>"
        )
    )
    rt = espi.parse(doc).reading_types[0]
    assert rt.uom == 9999 and rt.uom.name == "UNKNOWN_9999" and not rt.uom.known
    assert rt.kind == espi.MeasurementKind.ENERGY and rt.kind.label == "energy"


def test_blocks_waiting_for_a_reading_type_are_released_at_the_cap(monkeypatch):
    """A file whose blocks never learn their reading type must not be held in memory whole."""
    from espi import reader

    monkeypatch.setattr(reader, "HOLD_BACK_READINGS", 3)
    blocks = [
        entry(
            f"<espi:IntervalBlock>{reading(b * 7200, b * 10)}{reading(b * 7200 + 3600, b * 10 + 1)}"
            "</espi:IntervalBlock>"
        )
        for b in range(5)
    ]
    doc = feed(entry("<espi:MeterReading/>"), *blocks)
    seen = []
    stream = espi.iter_readings(doc)
    for r in stream:
        seen.append(r.value)
        assert len(stream._engine.linker.held) <= 2  # never more than the cap allows
    assert seen == [0, 1, 10, 11, 20, 21, 30, 31, 40, 41]


def many_blocks_feed(days):
    """One meter, ``days`` blocks of two readings, linked as Batch answers link them."""
    mr = f"{BASE}/Subscription/1/UsagePoint/1/MeterReading/1"
    blocks = [
        entry(
            f"<espi:IntervalBlock>{reading(d * 86400, d)}{reading(d * 86400 + 3600, d)}"
            "</espi:IntervalBlock>",
            f"{mr}/IntervalBlock/{d}",
            f"{mr}/IntervalBlock",
        )
        for d in range(days)
    ]
    return feed(
        entry(
            "<espi:ReadingType><espi:uom>72</espi:uom></espi:ReadingType>", f"{BASE}/ReadingType/1"
        ),
        entry("<espi:MeterReading/>", mr, related=[f"{BASE}/ReadingType/1"]),
        *blocks,
    )


def test_streaming_keeps_no_block_it_has_handed_out():
    """iter_readings once listed every block in its meter reading's interval_blocks, so memory
    grew with the file (~1.35 KiB a block: +49 MiB at 3.5 M readings)."""
    import gc

    def blocks_alive():
        gc.collect()
        return sum(1 for o in gc.get_objects() if type(o) is espi.IntervalBlock)

    alive_before = blocks_alive()
    stream = espi.iter_readings(many_blocks_feed(300))
    last = None
    for n, r in enumerate(stream):
        last = r
        if n == 400:
            assert blocks_alive() - alive_before <= 2  # the one being read, and last's
    assert last is not None and last.unit == "Wh" and last.block.meter_reading is not None
    (mr,) = [r for r in stream.resources if isinstance(r, espi.MeterReading)]
    assert mr.interval_blocks == []  # a streamed block points to its meter reading only
    assert blocks_alive() - alive_before <= 1
    parsed = espi.parse(many_blocks_feed(3))
    assert len(parsed.meter_readings[0].interval_blocks) == 3  # parse keeps them all


@pytest.mark.parametrize("collector_on", [True, False])
def test_parse_gives_the_garbage_collector_back_as_it_found_it(collector_on):
    """parse builds with the cyclic collector off (walking the growing document again and again
    was most of its cost beyond streaming), and leaves it as it was, error or not."""
    import gc

    was = gc.isenabled()
    try:
        (gc.enable if collector_on else gc.disable)()
        assert len(espi.parse(many_blocks_feed(3)).interval_blocks) == 3
        assert gc.isenabled() is collector_on
        with pytest.raises(espi.ParseError):
            espi.parse(many_blocks_feed(3)[:-20])
        assert gc.isenabled() is collector_on
    finally:
        (gc.enable if was else gc.disable)()
