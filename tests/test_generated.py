"""Property tests: generated feeds in the shapes real files take read back exactly."""

from __future__ import annotations

import warnings

from hypothesis import given, settings
from hypothesis import strategies as st

import espi

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
BASE = "https://utility.test/DataCustodian/espi/1_1/resource"

int48 = st.integers(min_value=-(2**47), max_value=2**47 - 1)
reading_st = st.tuples(
    st.integers(min_value=0, max_value=2**32 - 1),  # start
    st.integers(min_value=1, max_value=86400),  # duration
    int48,  # value
    st.none() | int48,  # cost
    st.lists(st.sampled_from([0, 7, 8, 14, 17, 19]), max_size=2),  # qualities
)
meter_st = st.tuples(
    st.sampled_from([72, 169, 42, 38]),  # uom
    st.integers(min_value=-6, max_value=6),  # power of ten
    st.lists(st.lists(reading_st, min_size=1, max_size=5), min_size=1, max_size=3),  # blocks
)
shape_st = st.fixed_dictionaries(
    {
        "prefix": st.sampled_from(["", "espi:", "ns0:"]),
        "atom_prefix": st.sampled_from(["", "a:"]),
        "type_after_blocks": st.booleans(),
        "links": st.booleans(),
    }
)


def build(meters, shape):
    p, a = shape["prefix"], shape["atom_prefix"]
    decl = f'xmlns{":" + p[:-1] if p else ""}="{ESPI}"'

    def entry(body, self_href=None, up=None, related=()):
        links = ""
        if shape["links"]:
            for rel, href in [("self", self_href), ("up", up)] + [("related", h) for h in related]:
                if href:
                    links += f'<{a}link rel="{rel}" href="{href}"/>'
        return f"<{a}entry>{links}<{a}content>{body}</{a}content></{a}entry>"

    def el(name, inner=""):
        return f"<{p}{name} {decl}>{inner}</{p}{name}>"

    def reading(r):
        start, duration, value, cost, qualities = r
        inner = f"<{p}cost>{cost}</{p}cost>" if cost is not None else ""
        inner += "".join(
            f"<{p}ReadingQuality><{p}quality>{q}</{p}quality></{p}ReadingQuality>"
            for q in qualities
        )
        inner += (
            f"<{p}timePeriod><{p}duration>{duration}</{p}duration><{p}start>{start}</{p}start>"
            f"</{p}timePeriod><{p}value>{value}</{p}value>"
        )
        return f"<{p}IntervalReading>{inner}</{p}IntervalReading>"

    parts = []
    for n, (uom, power, blocks) in enumerate(meters):
        up = f"{BASE}/Subscription/1/UsagePoint/{n}"
        mr = f"{up}/MeterReading/1"
        rt = f"{BASE}/ReadingType/{n}"
        rt_entry = entry(
            el(
                "ReadingType",
                f"<{p}powerOfTenMultiplier>{power}</{p}powerOfTenMultiplier><{p}uom>{uom}</{p}uom>",
            ),
            rt,
            f"{BASE}/ReadingType",
        )
        parts.append(
            entry(el("UsagePoint"), up, f"{BASE}/Subscription/1/UsagePoint", [f"{up}/MeterReading"])
        )
        if not shape["type_after_blocks"]:
            parts.append(rt_entry)
        parts.append(
            entry(el("MeterReading"), mr, f"{up}/MeterReading", [f"{mr}/IntervalBlock", rt])
        )
        for b, block in enumerate(blocks):
            body = el("IntervalBlock", "".join(reading(r) for r in block))
            parts.append(entry(body, f"{mr}/IntervalBlock/{b}", f"{mr}/IntervalBlock"))
        if shape["type_after_blocks"]:
            parts.append(rt_entry)
    a_decl = f'xmlns{":" + a[:-1] if a else ""}="{ATOM}"'
    return f"<{a}feed {a_decl}>{''.join(parts)}</{a}feed>".encode()


def expected(meters):
    return [
        (n, uom, start, duration, value, cost, tuple(qualities))
        for n, (uom, _power, blocks) in enumerate(meters)
        for block in blocks
        for start, duration, value, cost, qualities in block
    ]


def observed(readings, usage_points):
    index = {id(up): n for n, up in enumerate(usage_points)}
    return [
        (
            index[id(r.usage_point)],
            int(r.reading_type.uom),
            r.start,
            r.duration,
            r.value,
            r.cost,
            tuple(int(q) for q in r.qualities),
        )
        for r in readings
    ]


@settings(max_examples=150, deadline=None)
@given(st.lists(meter_st, min_size=1, max_size=3), shape_st)
def test_generated_feeds_read_back_exactly(meters, shape):
    doc = build(meters, shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", espi.EspiWarning)  # link-less shapes are reported
        feed = espi.parse(doc)
        stream = espi.iter_readings(doc)
        streamed = list(stream)
    assert observed(feed.readings(), feed.usage_points) == expected(meters)
    usage_points = [r for r in stream.resources if isinstance(r, espi.UsagePoint)]
    assert observed(streamed, usage_points) == expected(meters)
    powers = [int(mr.reading_type.power_of_ten_multiplier) for mr in feed.meter_readings]
    assert powers == [power for _uom, power, _blocks in meters]
