"""`espi fetch pelm|wattshift` against the local fakes over HTTP: schema-valid Green Button XML
with the provider's values; clear errors (exit 3) when the provider refuses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import espi
from espi.cli import main
from espi.providers import pelm as P
from fakes import pelm as fake_pelm
from fakes import wattshift as fake_ws
from fakes.common import Served, serve

from .test_pelm import CLIENT, SECRET, connect

DAY = 86400


@pytest.fixture
def pelm() -> Iterator[Served]:
    served = serve(fake_pelm.create_app(CLIENT, SECRET))
    yield served
    served.stop()


@pytest.fixture
def wattshift() -> Iterator[Served]:
    served = serve(fake_ws.create_app("ws-key"))
    yield served
    served.stop()


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_fetch_pelm_writes_valid_xml(pelm: Served, tmp_path: Path) -> None:
    token = connect(P.Pelm(CLIENT, SECRET, base_url=pelm.url), pelm.url)
    out = tmp_path / "pelm.xml"
    env = {"PELM_CLIENT_ID": CLIENT, "PELM_SECRET": SECRET, "PELM_ACCESS_TOKEN": token}
    code, _, err = run(
        "fetch",
        "pelm",
        "--base-url",
        pelm.url,
        "--start",
        "2026-10-01",
        "--end",
        "2026-10-08",
        "-o",
        str(out),
        env=env,
    )
    assert code == 0, err
    assert "3 usage point(s)" in err and "bill(s)" in err
    assert espi.validate(out) == []
    feed = espi.parse(out)
    assert sum(1 for _ in feed.readings()) == 7 * 24 * 2 + 7 + 7 * 96 * 2  # usage + CO2e, gas
    assert all(up.link("self").startswith(pelm.url) for up in feed.usage_points)


def test_fetch_pelm_refused(pelm: Served, tmp_path: Path) -> None:
    env = {"PELM_CLIENT_ID": CLIENT, "PELM_SECRET": SECRET, "PELM_ACCESS_TOKEN": "stale"}
    code, _, err = run(
        "fetch", "pelm", "--base-url", pelm.url, "-o", str(tmp_path / "x.xml"), env=env
    )
    assert code == 3
    assert "error: pelm HTTP 401 token_invalid: the access token is missing or invalid" in err
    assert not (tmp_path / "x.xml").exists()


def test_fetch_wattshift_lists_plans_and_prices_a_file(wattshift: Served, tmp_path: Path) -> None:
    env = {"WATTSHIFT_API_KEY": "ws-key"}
    code, out, _ = run("fetch", "wattshift", "--base-url", wattshift.url, "--zip", "95313", env=env)
    assert code == 0 and "TOU-C" in out
    plan = next(line.split()[0] for line in out.splitlines() if line.endswith("TOU-C"))
    # a day of hourly usage to price
    up = espi.builder.usage_point(local_time="America/Los_Angeles")
    start = int(time.time()) // DAY * DAY - 3 * DAY
    espi.builder.meter_reading(
        up,
        espi.builder.reading_type(interval_length=3600),
        [(start + h * 3600, 3600, 1000) for h in range(24)],
    )
    usage = tmp_path / "usage.xml"
    espi.write(espi.builder.feed(up), usage)
    priced = tmp_path / "priced.xml"
    code, _, err = run(
        "fetch",
        "wattshift",
        "--base-url",
        wattshift.url,
        "--zip",
        "95313",
        "--plan",
        plan,
        "--price",
        str(usage),
        "-o",
        str(priced),
        env=env,
    )
    assert code == 0, err
    assert "priced 24 of 24 readings" in err
    assert espi.validate(priced) == []
    costs = {r.cost for r in espi.iter_readings(priced)}
    assert costs == {38000, 52000}  # 1 kWh at TOU-C's off-peak and peak prices
    signal = tmp_path / "signal.xml"
    home = next(iter(wattshift.app.extensions["wattshift"].homes))
    code, _, err = run(
        "fetch",
        "wattshift",
        "--base-url",
        wattshift.url,
        "--home",
        home,
        "--start",
        "2026-11-01",
        "--end",
        "2026-11-03",
        "-o",
        str(signal),
        env=env,
    )
    assert code == 0, err
    assert espi.validate(signal) == [] and sum(1 for _ in espi.iter_readings(signal)) == 192


def test_fetch_wattshift_bad_key(wattshift: Served) -> None:
    code, _, err = run(
        "fetch",
        "wattshift",
        "--base-url",
        wattshift.url,
        "--zip",
        "95313",
        env={"WATTSHIFT_API_KEY": "nope"},
    )
    assert code == 3 and "AUTH_INVALID_API_KEY" in err
