"""A data user's first steps: short reprs, enums that print their label, a clean public API,
and a DataFrame."""

from __future__ import annotations

import warnings

import pytest

import espi
from tests.conftest import sample_path


def quiet_parse(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", espi.EspiWarning)
        return espi.parse(path)


def test_reprs_are_short_and_say_what_they_hold():
    feed = quiet_parse(
        sample_path("Coastal_Multi_Family_12hr_Jan_1_2011_to_Jan_1_2012_RetailCustomer_3.xml")
    )
    up, mr, block = feed.usage_points[0], feed.meter_readings[0], feed.interval_blocks[0]
    assert repr(feed).startswith(
        "Feed('urn:uuid:DE33D836-583A-4F1F-A25D-EEEDCFBCA19E', usage_points=1"
    )
    assert "readings=8,760, span=2011-01-01 08:00..2012-01-01 08:00Z" in repr(feed)
    assert repr(up) == (
        "UsagePoint('RetailCustomer/3/UsagePoint/1', kind=electricity, meter_readings=1, "
        "usage_summaries=1, readings=8,760, span=2011-01-01 08:00..2012-01-01 08:00Z)"
    )
    assert repr(mr).startswith(
        "MeterReading('RetailCustomer/3/UsagePoint/1/MeterReading/01', unit='Wh', blocks=730"
    )
    assert repr(block).startswith(
        "IntervalBlock('RetailCustomer/3/UsagePoint/1/MeterReading/01/IntervalBlock/"
    )
    assert repr(feed.reading_types[0]) == (
        "ReadingType('ReadingType/07', 'Wh', interval_length=3600, flow_direction=forward, "
        "kind=energy, currency=USD)"
    )
    assert max(len(repr(x)) for x in (feed, up, mr, block, feed.reading_types)) < 250


def test_enums_print_their_label_and_stay_integers():
    kind = espi.ServiceKind.ELECTRICITY
    assert str(espi.UnitSymbolKind.WH) == "Wh" and f"{kind}" == "electricity"
    assert int(espi.UnitSymbolKind.WH) == 72 and f"{espi.UnitSymbolKind.WH:d}" == "72"
    assert espi.UnitSymbolKind.WH == 72 and f"{espi.Currency.USD:>5}" == "  USD"
    assert str(espi.UnitSymbolKind(9999)) == "UNKNOWN_9999"
    assert b"<espi:uom>72</espi:uom>" in espi.dumps(espi.ReadingType(uom=espi.UnitSymbolKind.WH))


def test_the_public_api_is_listed_and_dir_is_clean():
    assert {"parse", "iter_readings", "to_dataframe", "Timeline", "Feed", "UnitSymbolKind"} <= set(
        espi.__all__
    )
    assert all(hasattr(espi, name) for name in espi.__all__)
    assert not {"Any", "dataclass", "datetime", "field", "annotations", "Iterator"} & set(dir(espi))


def test_to_dataframe_one_row_per_reading_in_natural_units():
    pandas = pytest.importorskip("pandas", reason="pandas is the optional espi[pandas] extra")
    path = sample_path("pgesmd_2019-10-23.xml")
    df = espi.to_dataframe(path)
    assert list(df.columns) == ["usage_point", "reading_type", "start", "local_start",
                                "duration", "quantity", "unit", "cost", "currency",
                                "quality", "tou"]  # fmt: skip
    assert len(df) == 48
    first = df.iloc[0]
    assert first.unit == "kWh" and first.quantity == pytest.approx(1.018899)
    assert first.start == pandas.Timestamp("2019-10-23 07:00", tz="UTC")
    assert first.local_start.isoformat() == "2019-10-23T00:00:00-07:00"
    assert first.quality == "revenue-quality" and first.duration == 3600
    same = espi.to_dataframe(quiet_parse(path))  # a Feed works the same
    assert same["quantity"].sum() == pytest.approx(df["quantity"].sum())


def test_to_dataframe_keeps_missing_values_missing():
    pytest.importorskip("pandas", reason="pandas is the optional espi[pandas] extra")
    data = (
        b'<IntervalBlock xmlns="http://naesb.org/espi"><IntervalReading><timePeriod>'
        b"<duration>900</duration><start>0</start></timePeriod></IntervalReading></IntervalBlock>"
    )
    df = espi.to_dataframe(data)
    assert df["quantity"].isna().all() and df["cost"].isna().all()
