"""Golden tests: every real sample, read by both doors, against a plain lxml count."""

from __future__ import annotations

import warnings

import pytest
from lxml import etree

import espi
from tests.conftest import EXPECTED, all_sample_names, sample_path


def lxml_truth(path):
    """What a plain lxml pass finds: count, value sum and cost sum of IntervalReadings."""
    tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
    readings = list(tree.iter("{*}IntervalReading"))
    values = sum(int(r.findtext("{*}value") or 0) for r in readings)
    costs = sum(int(r.findtext("{*}cost") or 0) for r in readings)
    return len(readings), values, costs


def totals(readings):
    readings = list(readings)
    return len(readings), sum(r.value or 0 for r in readings), sum(r.cost or 0 for r in readings)


WELL_FORMED = [n for n in all_sample_names() if EXPECTED[n]["well_formed"]]
NOT_WELL_FORMED = [n for n in all_sample_names() if not EXPECTED[n]["well_formed"]]


@pytest.mark.parametrize("name", WELL_FORMED)
def test_both_doors_find_every_reading(name):
    path = sample_path(name)
    truth = lxml_truth(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", espi.EspiWarning)
        feed = espi.parse(path)
        streamed = totals(espi.iter_readings(path))
    assert totals(feed.readings()) == truth
    assert streamed == truth


@pytest.mark.parametrize("name", NOT_WELL_FORMED)
def test_not_well_formed_is_refused_with_its_line(name):
    path = sample_path(name)
    with pytest.raises(espi.ParseError) as info:
        espi.parse(path)
    assert info.value.line == 1 and info.value.column == 11
    assert f"{path}:1:11: not well-formed XML" in str(info.value)
    with pytest.raises(espi.ParseError):
        list(espi.iter_readings(path))


@pytest.mark.parametrize("name", WELL_FORMED)
def test_validate_agrees_with_xmlschema_on_espi_4_0(name):
    """The verdicts recorded in the reference MANIFEST (xmlschema, ESPI 4.0 schemas)."""
    problems = espi.validate(sample_path(name))
    assert (not problems) == EXPECTED[name]["valid_4_0"], problems[:3]
    for p in problems:
        assert p.line is not None and p.path.startswith("/") and p.message


def test_every_linked_reading_knows_its_usage_point_and_type(sample):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", espi.EspiWarning)
        feed = espi.parse(sample("threeusagepointsthreecustomer.xml"))
    assert len(feed.usage_points) == 3
    for up in feed.usage_points:
        readings = list(up.readings())
        assert readings, "each usage point has its own readings"
        assert all(r.usage_point is up and r.reading_type is not None for r in readings)
    assert sum(len(list(up.readings())) for up in feed.usage_points) == 216
