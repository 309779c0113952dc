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
from fakes import griddy as fake_griddy
from fakes import pelm as fake_pelm
from fakes import wattshift as fake_ws
from fakes import wattzon as fake_wz
from fakes.common import Served, serve
from tests.certs import serve_tls

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


# --------------------------------------------------------------------------- WattzOn, Griddy


@pytest.fixture
def wattzon(certs: Path) -> Iterator[Served]:
    served = serve_tls(fake_wz.create_app(), certs)
    yield served
    served.stop()


def wattzon_env(certs: Path) -> dict[str, str]:
    return {"WATTZON_CERT": str(certs / "client.pem"), "WATTZON_KEY": str(certs / "client.key"),
            "WATTZON_CA": str(certs / "ca.pem"), "WATTZON_PASSWORD": "secret"}  # fmt: skip


def test_fetch_wattzon_lists_utilities_creates_a_profile_and_writes_valid_xml(
    wattzon: Served, certs: Path, tmp_path: Path
) -> None:
    env = wattzon_env(certs)
    code, out, _ = run("fetch", "wattzon", "--base-url", wattzon.url, "--zip", "00007", env=env)
    assert code == 0 and "3149  Mock Utility Provider (electric+gas)  (electricity,gas)" in out
    target = tmp_path / "wz.xml"
    code, _, err = run("fetch", "wattzon", "--base-url", wattzon.url, "--zip", "00007",
                       "--utility", "3149", "--username", "customer", "--poll", "0",
                       "-o", str(target), env=env)  # fmt: skip
    assert code == 0, err
    assert "created profile 516" in err and "interval job" in err and "bill(s)" in err
    assert espi.validate(target) == []
    feed = espi.parse(target)
    assert len(feed.usage_summaries) == 26 and sum(1 for _ in feed.readings()) > 2000
    again = tmp_path / "csv.xml"
    code, _, err = run("fetch", "wattzon", "--base-url", wattzon.url, "--profile", "516",
                       "--format", "csv", "-o", str(again), env=env)  # fmt: skip
    assert code == 0
    rows = [(r.start, r.duration, r.value) for r in espi.iter_readings(target)]
    assert rows == [(r.start, r.duration, r.value) for r in espi.iter_readings(again)]


def test_fetch_wattzon_failures_exit_3_with_the_reason(
    wattzon: Served, certs: Path, tmp_path: Path
) -> None:
    env = wattzon_env(certs)
    code, _, err = run("fetch", "wattzon", "--base-url", wattzon.url, "--zip", "00007",
                       "--utility", "3149", "--username", "credential_error", "--poll", "0",
                       "-o", str(tmp_path / "x.xml"), env=env)  # fmt: skip
    assert code == 3 and "the utility refused the username or password" in err
    assert not (tmp_path / "x.xml").exists()
    code, _, err = run("fetch", "wattzon", "--base-url", wattzon.url, "--profile", "999",
                       "-o", str(tmp_path / "x.xml"), env=env)  # fmt: skip
    assert code == 3 and "HTTP 404 profile_not_found: Profile not found" in err


@pytest.fixture
def griddy() -> Iterator[Served]:
    served = serve(fake_griddy.create_app())
    yield served
    served.stop()


def test_fetch_griddy_use_and_prices(griddy: Served, tmp_path: Path) -> None:
    env = {"GRIDDY_EMAIL": "jane.doe@example.com", "GRIDDY_PASSWORD": "Password123"}
    use, prices = tmp_path / "use.xml", tmp_path / "prices.xml"
    code, _, err = run("fetch", "griddy", "--base-url", griddy.url, "-o", str(use), env=env)
    assert code == 0, err
    assert espi.validate(use) == [] and any(r.cost for r in espi.iter_readings(use))
    code, _, err = run("fetch", "griddy", "--base-url", griddy.url, "--prices", "LZ_WEST",
                       "-o", str(prices), env=env)  # fmt: skip
    assert code == 0 and espi.validate(prices) == []
    code, _, err = run("fetch", "griddy", "--base-url", griddy.url, "-o", str(use),
                       env={**env, "GRIDDY_PASSWORD": "wrong"})  # fmt: skip
    assert code == 3 and "HTTP 403 Forbidden: We couldn't authenticate you" in err
