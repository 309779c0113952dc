"""The `espi` command, through click's CliRunner and as an installed console script."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

import espi
from espi.cli import main


@pytest.fixture
def run():
    def invoke(*args):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


def test_validate_exit_codes(run, sample, tmp_path):
    valid = sample("pgesmd_2019-10-23.xml")
    invalid = sample("PGEAuthorization.xml")
    broken = sample("PGEUsageSummary.xml")

    ok = run("validate", valid)
    assert ok.exit_code == 0 and f"{valid}: valid against ESPI 4.0" in ok.output

    bad = run("validate", valid, invalid)
    assert bad.exit_code == 1
    assert (
        f"{invalid}:10: '251963658000000' must be a whole number from 0 to 4,294,967,295 (at "
        in bad.output
    )
    assert "espi:authorizedPeriod/espi:duration" in bad.output

    unreadable = run("validate", invalid, broken, tmp_path / "missing.xml")
    assert unreadable.exit_code == 2
    assert f"error: {broken}:1:11: not well-formed XML" in unreadable.output
    assert "cannot open" in unreadable.output


def test_validate_other_schema_sets(run, sample):
    path = sample("BulkSCEIntervalBlock.xml")
    assert run("validate", path).exit_code == 1  # legacy ServiceDeliveryPoint
    assert run("validate", "--schema", "legacy", path).exit_code == 0
    assert (
        run("validate", "--schema", "3.3", sample("burlington_hydro_usage_60min.xml")).exit_code
        == 0
    )


def test_summary(run, sample):
    result = run("summary", sample("BulkSCEIntervalBlock.xml"))
    assert result.exit_code == 0
    out = result.output
    assert "usage points: 1; readings: 97" in out
    assert "usage point RetailCustomer/VJEWP31BE/UsagePoint/NB6WRU: electricity" in out
    assert "Wh, forward, energy, interval 15 min" in out
    assert "period: 2015-08-13 07:00Z to 2015-08-14 07:15Z (1 d 15 min)" in out
    assert "gaps: none" in out
    assert "bills (usage summaries): 1, billed 174.18 USD" in out
    assert "tolerated:" in out and "legacy element name <ServiceDeliveryPoint>" in out


def test_summary_reports_gaps(run, tmp_path):
    readings = "".join(
        f"<IntervalReading><timePeriod><duration>3600</duration><start>{s}</start></timePeriod>"
        f"<value>1</value></IntervalReading>"
        for s in (0, 3600, 4 * 3600, 5 * 3600)
    )
    path = tmp_path / "gappy.xml"
    path.write_text(f'<IntervalBlock xmlns="http://naesb.org/espi">{readings}</IntervalBlock>')
    out = run("summary", path).output
    assert "gaps: 1, longest 2 h from 1970-01-01 02:00Z" in out


def test_export_csv_and_json(run, sample, tmp_path):
    path = sample("pgesmd_2019-10-23.xml")
    result = run("export", path)
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert len(rows) == 48
    assert rows[0] == {
        "usage_point": "Subscription/4095251/UsagePoint/5391320451",
        "reading_type": "ReadingType/NzI6bnVsbDozNjAwOjE=",
        "start": rows[0]["start"],
        "duration": "3600",
        "value": rows[0]["value"],
        "unit": "Wh",
        "cost": "",
        "currency": "",
        "quality": "revenue-quality",
    }
    out = tmp_path / "out.json"
    result = run("export", path, "--format", "json", "-o", out)
    assert result.exit_code == 0
    data = json.loads(out.read_text())
    assert [r["value"] for r in data] == [float(r["value"]) for r in rows]
    assert not (tmp_path / "out.json.partial").exists()


def test_export_of_a_broken_file_leaves_nothing(run, sample, tmp_path):
    out = tmp_path / "out.csv"
    result = run("export", sample("PGEUsageSummary.xml"), "-o", out)
    assert result.exit_code == 2
    assert "not well-formed XML" in result.output
    assert list(tmp_path.iterdir()) == []


def test_console_script_is_installed(sample):
    exe = shutil.which("espi") or str(sys.prefix + "/bin/espi")
    done = subprocess.run(
        [exe, "summary", sample("burlington_hydro_usage_60min.xml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "readings: 6" in done.stdout


def test_fetch_help_names_the_environment_variables_and_needs_one_of_the_two(monkeypatch):
    runner = CliRunner()
    text = runner.invoke(main, ["fetch", "pelm", "--help"]).output
    assert "PELM_CLIENT_ID" in text and "PELM_SECRET" in text and "PELM_ACCESS_TOKEN" in text
    assert "required" not in text[text.index("--client-id") : text.index("--start")]
    for name in ("PELM_CLIENT_ID", "PELM_SECRET", "PELM_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    missing = runner.invoke(main, ["fetch", "pelm", "-o", "x.xml"])
    assert missing.exit_code == 2
    assert "give --client-id or set PELM_CLIENT_ID" in missing.output


def test_reading_order_has_one_wording_in_summary_and_lint(run, sample):
    path = sample("intervals_APUC000000_electric.xml")
    summary = run("summary", path).output
    findings = CliRunner().invoke(main, ["lint", str(path)]).output
    wording = "readings run newest first (reverse order)"
    assert f"note: {wording}" in summary and "overlapping" not in summary
    assert f"info: User/237422/UsagePoint/1402026/MeterReading/01: {wording}" in findings


def test_missing_values_are_counted_as_missing_not_zero(run, tmp_path):
    readings = "".join(
        f"<IntervalReading><timePeriod><duration>3600</duration><start>{s}</start></timePeriod>"
        + ("<value>5</value>" if s else "")
        + "</IntervalReading>"
        for s in (0, 3600)
    )
    path = tmp_path / "missing.xml"
    path.write_text(f'<IntervalBlock xmlns="http://naesb.org/espi">{readings}</IntervalBlock>')
    assert (
        "readings: 2; total 5.000 (1 without a value: missing, not zero)"
        in run("summary", path).output
    )
    rows = list(csv.DictReader(io.StringIO(run("export", path).output)))
    assert [r["value"] for r in rows] == ["", "5"]
    data = json.loads(run("export", path, "--format", "json").output)
    assert [r["value"] for r in data] == [None, 5]
    assert "1 reading(s) without a value (missing, not zero) [missing-value]" in (
        CliRunner().invoke(main, ["lint", str(path)]).output
    )


def test_export_to_stdout_prints_nothing_before_an_error(tmp_path):
    path = tmp_path / "cut.xml"
    path.write_bytes(b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><content>')
    done = CliRunner().invoke(main, ["export", str(path)])
    assert done.exit_code == 2 and done.stdout == ""
    assert done.stderr.count("line") == 1  # the position once: "FILE:1:58: not well-formed"


def test_validate_reports_progress_entry_by_entry(sample):
    seen = []
    path = sample("Coastal_Multi_Family_12hr_Jan_1_2011_to_Jan_1_2012_RetailCustomer_3.xml")
    problems = espi.validate(path, options=espi.ParseOptions(progress=seen.append))
    assert problems == []
    assert len(seen) > 700 and seen == sorted(seen) and seen[-1] <= path.stat().st_size
    assert seen[-1] > 0.99 * path.stat().st_size
