"""The builder, scope strings, `espi lint` and `espi convert`."""

from __future__ import annotations

import csv
import warnings
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from click.testing import CliRunner

import espi
from espi import builder as build
from espi import scope
from espi.cli import main
from espi.lint import lint

T0 = int(datetime(2024, 11, 2, 7, tzinfo=UTC).timestamp())  # local midnight, Los Angeles


def la_meter(hours=72, start=T0):
    up = build.usage_point(espi.ServiceKind.ELECTRICITY, local_time="America/Los_Angeles")
    rt = build.reading_type(
        espi.UnitSymbolKind.WH, interval_length=3600, currency=espi.Currency.USD
    )
    build.meter_reading(up, rt, [(start + h * 3600, 3600, 500 + h, 1500, 17) for h in range(hours)])
    return up


# --------------------------------------------------------------------------- builder


def test_blocks_are_local_days_with_25_hours_on_fall_back():
    mr = la_meter().meter_readings[0]
    assert [(b.interval.duration, len(b.readings)) for b in mr.interval_blocks] == [
        (86400, 24),
        (90000, 25),
        (86400, 23),
    ]
    assert all(r.block is b for b in mr.interval_blocks for r in b.readings)


def test_fixed_length_blocks_and_unsorted_input():
    up = build.usage_point()
    rt = build.reading_type()
    series = [(T0 + h * 900, 900, h) for h in reversed(range(8))]
    mr = build.meter_reading(up, rt, series, block=3600)
    assert [len(b.readings) for b in mr.interval_blocks] == [4, 4]
    assert [r.value for r in mr.readings()] == list(range(8))


def test_bills_and_a_whole_feed_are_valid_espi():
    up = la_meter()
    build.usage_summary(
        up, start=T0, end=T0 + 30 * 86400, bill=Decimal("84.12"), consumption=512_000,
        line_items=[build.line_item("Delivery", "40.00", espi.ItemKind.ENERGY_DELIVERY_FEE),
                    build.line_item("Tax", "2.31", espi.ItemKind.TAX)],
    )  # fmt: skip
    out = espi.dumps(build.feed(up))
    assert espi.validate(out) == []
    again = espi.parse(out)
    bill = again.usage_points[0].usage_summaries[0]
    assert bill.bill_last_period == 8_412_000 and bill.currency == espi.Currency.USD
    assert [(li.note, li.amount) for li in bill.cost_additional_detail_last_period] == [
        ("Delivery", 4_000_000),
        ("Tax", 231_000),
    ]
    assert sum(1 for _ in again.readings()) == 72
    assert again.usage_points[0].local_time_parameters.dst_start_rule == "360E2000"


def test_builder_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="no time zone"):
        build.meter_reading(None, build.reading_type(), [(datetime(2024, 1, 1), 900, 1)])  # noqa: DTZ001


# --------------------------------------------------------------------------- scope

PGE_SCOPE = (
    "FB=1_3_4_5_8_13_14_15_18_19_31_32_35_37_38_39_40;IntervalDuration=900_3600;"
    "BlockDuration=Daily;HistoryLength=63072000;SubscriptionFrequency=Daily;AccountCollection=1;"
)


def test_scope_round_trip_and_words():
    s = scope.parse(PGE_SCOPE)
    assert s.function_blocks[:4] == (1, 3, 4, 5) and s.interval_durations == (900, 3600)
    assert (s.block_duration, s.history_length, s.account_collection) == ("Daily", 63072000, 1)
    assert scope.parse(s.format()) == s
    assert s.format() == PGE_SCOPE.rstrip(";")
    words = scope.describe(s)
    assert "Your energy use, interval by interval" in words
    assert not any("REST" in line or "Function block" in line for line in words)
    assert "Readings every 15 minutes or 1 hour" in words and "History: 730 days" in words
    assert scope.function_block(18).name == "Function block 18"  # kept, not refused
    bulk = scope.parse("FB=35;BR=51234;Future=x")
    assert bulk.bulk_id == "51234" and bulk.extra == (("Future", "x"),)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty scope"),
        ("IntervalDuration=900", "no FB="),
        ("FB=1_x", "'x' is not a whole number"),
        ("FB=1;FB=2", "names FB twice"),
        ("FB=1;junk", "'junk' is not NAME=VALUE"),
        ("FB=1;HistoryLength=soon", "HistoryLength=soon: not a whole number"),
    ],
)
def test_malformed_scopes_say_what_is_wrong(text, message):
    with pytest.raises(scope.ScopeError, match=message):
        scope.parse(text)


# --------------------------------------------------------------------------- lint


def codes(findings):
    return {f.code for f in findings}


def test_lint_finds_gaps_overlaps_and_strays(tmp_path):
    up = la_meter(hours=48)
    mr = up.meter_readings[0]
    day1, day2 = mr.interval_blocks
    del day1.readings[5:8]  # a three-hour gap
    day2.readings[3].start -= 1800  # overlaps the reading before
    day2.readings.append(espi.IntervalReading(start=T0 + 50 * 3600, duration=3600, value=1))
    mr.reading_type.currency = None
    path = tmp_path / "bad.xml"
    espi.write(build.feed(up), path)
    found = lint(path)
    assert {"gap", "overlap", "outside-block", "cost-without-currency"} <= codes(found)
    gap = next(f for f in found if f.code == "gap")
    assert gap.severity == "warning" and "gap of 3 h from 2024-11-02 05:00 UTC-07:00" in gap.message
    assert str(gap).startswith(f"{path}:")


def test_lint_reports_dst_days_and_interval_length(sample):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", espi.EspiWarning)
        nov = lint(sample("hourlyForMonthNov.xml"))
        gas = lint(sample("Gas_monthly.xml"))
        coastal = lint(
            sample("Coastal_Multi_Family_12hr_Jan_1_2011_to_Jan_1_2012_RetailCustomer_3.xml")
        )
    assert any(f.code == "dst-day" and "25-hour day 2011-11-06" in f.message for f in nov)
    assert any(
        f.code == "interval-length" and "intervalLength 2678400 s (31 d)" in f.message for f in gas
    )
    assert any(f.code == "outside-block" and "2011-11-06" in f.message for f in coastal)


def test_lint_reports_duplicate_ids_and_limits_repeats(sample):
    findings = lint(sample("1hrLP_32Days_Additional2_M.xml"), limit=1)
    assert "duplicate-id" in codes(findings)
    pge = lint(sample("PGEIntervalBlock.xml"), limit=2)
    gaps = [f for f in pge if f.code == "gap"]
    assert len(gaps) == 3 and gaps[-1].message == "... and 19 more"
    assert "out-of-order" in codes(pge)


def test_newest_first_is_an_order_not_an_overlap(sample):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", espi.EspiWarning)
        found = lint(sample("intervals_APUC000000_electric.xml"))
    assert "reverse-order" in codes(found) and "overlap" not in codes(found)


def test_a_clean_file_lints_clean(tmp_path):
    path = tmp_path / "clean.xml"
    espi.write(build.feed(la_meter()), path)
    assert [f for f in lint(path) if f.severity != "info"] == []
    result = CliRunner().invoke(main, ["lint", str(path)])
    assert result.exit_code == 0 and "0 error(s) and warning(s)" in result.output
    bad = CliRunner().invoke(main, ["lint", sample_bad := str(tmp_path / "missing.xml")])
    assert bad.exit_code == 2 and sample_bad in bad.output


# --------------------------------------------------------------------------- convert


def test_csv_to_green_button_and_back_is_identical(sample, tmp_path):
    run = CliRunner()
    first, xml, second = tmp_path / "a.csv", tmp_path / "a.xml", tmp_path / "b.csv"
    assert (
        run.invoke(main, ["export", str(sample("test_usage_data.xml")), "-o", str(first)]).exit_code
        == 0
    )
    result = run.invoke(main, ["convert", str(first), "-o", str(xml), "--zone", "America/New_York"])
    assert result.exit_code == 0, result.output
    assert espi.validate(xml) == []
    assert run.invoke(main, ["export", str(xml), "-o", str(second)]).exit_code == 0

    def rows(path):
        with path.open() as f:
            return [
                {k: v for k, v in r.items() if k not in ("usage_point", "reading_type")}
                for r in csv.DictReader(f)
            ]

    assert rows(first) == rows(second) and len(rows(first)) == 1340


def test_convert_normalizes_any_readable_file(sample, tmp_path):
    out = tmp_path / "n.xml"
    result = CliRunner().invoke(
        main, ["convert", str(sample("BulkSCEIntervalBlock.xml")), "-o", str(out)]
    )
    assert result.exit_code == 0 and "tolerated:" in result.output
    assert espi.validate(out) == []


def test_convert_refuses_a_csv_that_is_not_an_export(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    result = CliRunner().invoke(main, ["convert", str(bad), "-o", str(tmp_path / "x.xml")])
    assert (
        result.exit_code == 2
        and "not an espi export CSV: no column start, duration, value" in result.output
    )
    assert not (tmp_path / "x.xml").exists()


def test_lint_finds_dangling_links_overlapping_bills_and_implausible_values(tmp_path):
    up = la_meter(hours=2)
    mr = up.meter_readings[0]
    mr.interval_blocks[0].readings[0].value = 10**12  # a terawatt-hour in one hour
    build.usage_summary(up, start=T0, end=T0 + 30 * 86400, bill="10")
    build.usage_summary(up, start=T0 + 29 * 86400, end=T0 + 59 * 86400, bill="10")
    path = tmp_path / "f.xml"
    espi.write(build.feed(up), path)
    text = path.read_text()
    other_type = '<link rel="related" href="https://localhost/DataCustodian/espi/1_1/resource/ReadingType/9"/>'
    text = text.replace(
        '<link rel="related" href="https://localhost/DataCustodian/espi/1_1/resource/ReadingType/1"/>',
        other_type,
    )
    path.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", espi.EspiWarning)
        found = {f.code: f for f in lint(path)}
    assert "ReadingType/9, which this document does not hold" in found["dangling-link"].message
    assert found["overlapping-bills"].message.startswith("billing periods overlap by 1 d")
    assert "1,000,000 MW" in found["implausible-value"].message
