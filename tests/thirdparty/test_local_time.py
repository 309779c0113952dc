"""Local time everywhere: the readings API's buckets, the date bounds of the API and of the
downloads are the usage point's own local hours and days (DST days have 23 and 25 hours),
compared with ``zoneinfo``; its numbers are the decimals the readings are. SQLite and
PostgreSQL."""

from __future__ import annotations

import contextlib
import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import fresh_postgres, fresh_redis
from tests.scripted import Answer, Scripted
from tests.thirdparty.apps import custodian, third_party
from tests.thirdparty.browsing import Person
from tests.thirdparty.homes import FALL, LA, SPRING, STEP, home, used


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("local-time")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            storage = {"DATABASE_URL": f"sqlite:///{tmp_path}/tp.sqlite",
                       "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite"}  # fmt: skip
        else:
            storage = {
                "DATABASE_URL": stack.enter_context(fresh_postgres()),
                "QUEUE_URL": fresh_redis(),
            }
        remote = stack.enter_context(Scripted(custodian(lambda seen: Answer(404))))
        app = stack.enter_context(third_party(tmp_path, storage, remote.url))
        person = Person.sign_up(app.url)
        page = person.upload("la.xml", home()).text
        up = int(
            re.search(r'href="/usage-points/(\d+)"', page.split('id="upload-result"')[1]).group(1)
        )
        yield app, person, up


def hours_of(day: datetime) -> list[str]:
    """The local hours of a day, as zoneinfo has them (UTC, ISO 8601)."""
    first = int(day.timestamp())
    last = int((day + timedelta(days=1)).replace(tzinfo=LA).timestamp())
    return [
        f"{datetime.fromtimestamp(t, UTC):%Y-%m-%dT%H:%M:%SZ}" for t in range(first, last, 3600)
    ]


@pytest.mark.parametrize(("day", "hours"), [(SPRING, 23), (FALL, 25)])
def test_a_dst_day_has_its_local_hours(served, day, hours):
    app, person, up = served
    on = f"{day:%Y-%m-%d}"
    body = person.get(f"{app.url}/api/usage-points/{up}/readings", timeout=30,
                      params={"aggregate": "hour", "start": on, "end": on}).json()  # fmt: skip
    points = body["series"][0]["points"]
    assert len(points) == hours
    assert [p["start"] for p in points] == hours_of(day)
    for p in points:
        t = int(datetime.fromisoformat(p["start"]).timestamp())
        assert p["value"] == sum(used(q) for q in range(t, t + 3600, STEP))
        assert p["duration"] == 3600
    assert body["start"] == hours_of(day)[0]
    assert (
        body["end"]
        == f"{datetime.fromtimestamp(int(day.timestamp()) + hours * 3600, UTC):%Y-%m-%dT%H:%M:%SZ}"
    )


def test_days_weeks_and_months_start_at_local_midnight(served):
    app, person, up = served

    def starts(aggregate, start, end):
        body = person.get(f"{app.url}/api/usage-points/{up}/readings", timeout=30,
                          params={"aggregate": aggregate, "start": start, "end": end}).json()  # fmt: skip
        return [(p["start"], p["duration"]) for p in body["series"][0]["points"]]

    def utc(day):
        return f"{day.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"

    days = starts("day", "2026-03-07", "2026-03-09")
    assert days == [
        (utc(datetime(2026, 3, d, tzinfo=LA)), h * 3600) for d, h in ((7, 24), (8, 23), (9, 24))
    ]
    weeks = starts("week", "2026-10-26", "2026-11-08")  # Mondays 10-26 and 11-02
    assert weeks == [(utc(datetime(2026, 10, 26, tzinfo=LA)), 7 * 86400 + 3600),
                     (utc(datetime(2026, 11, 2, tzinfo=LA)), 6 * 86400)]  # fmt: skip
    months = starts("month", "2026-03-01", "2026-03-31")
    assert months == [(utc(datetime(2026, 3, 1, tzinfo=LA)), 14 * 86400 - 3600)]


@pytest.mark.parametrize("fmt", ["csv", "json", "xml"])
def test_a_download_bound_is_a_local_day(served, fmt):
    """The Why: 06/15-06/16 asked in the page gave 6/14 6 pm to 6/16 5 pm."""
    import espi

    app, person, up = served
    got = person.get(f"{app.url}/usage-points/{up}/export", timeout=30,
                     params={"format": fmt, "start": "2026-03-08", "end": "2026-03-08"})  # fmt: skip
    assert got.status_code == 200
    if fmt == "csv":
        starts = [r["start"] for r in csv.DictReader(io.StringIO(got.text))]
    elif fmt == "json":
        starts = [r["start"] for r in got.json()]
    else:
        starts = [
            f"{r.start_datetime:%Y-%m-%dT%H:%M:%SZ}" for r in espi.parse(got.content).readings()
        ]
    assert len(starts) == 23 * 4
    assert starts[0] == "2026-03-08T08:00:00Z"  # local midnight, PST
    assert starts[-1] == "2026-03-09T06:45:00Z"  # 23:45, PDT


def test_a_local_time_without_an_offset_is_the_usage_points(served):
    app, person, up = served
    body = person.get(f"{app.url}/api/usage-points/{up}/readings", timeout=30,
                      params={"start": "2026-11-01T01:00", "end": "2026-11-01T01:30"}).json()  # fmt: skip
    assert [p["start"] for p in body["series"][0]["points"]] == [
        "2026-11-01T08:00:00Z",
        "2026-11-01T08:15:00Z",
    ]
    absolute = person.get(f"{app.url}/api/usage-points/{up}/readings", timeout=30,
                          params={"start": "2026-11-01T09:00:00Z", "end": "2026-11-01T09:30:00+00:00"}).json()  # fmt: skip
    assert [p["start"] for p in absolute["series"][0]["points"]] == [
        "2026-11-01T09:00:00Z",
        "2026-11-01T09:15:00Z",
    ]


def test_numbers_are_the_decimals_the_readings_are(served):
    """The Why: 0.15655999999999998 in the JSON API."""
    app, person, up = served
    text = person.get(f"{app.url}/api/usage-points/{up}/readings", timeout=30,
                      params={"start": "2026-03-02", "end": "2026-03-02"}).text  # fmt: skip
    costs = re.findall(r'"cost": ([0-9.]+)', text)
    assert costs and all(len(c.split(".")[1]) <= 5 for c in costs if "." in c), costs[:5]
    assert not re.search(r"\d\.\d{9,}", text)


def test_the_page_shows_a_week_of_whole_local_days(served):
    """The Why: the default hourly week had 152 points, not 7 x 24."""
    app, person, up = served
    page = person.get(f"{app.url}/usage-points/{up}", timeout=30).text
    start = re.search(r'id="start"[^>]* value="([\d-]+)"', page).group(1)
    end = re.search(r'id="end"[^>]* value="([\d-]+)"', page).group(1)
    assert (start, end) == ("2026-11-01", "2026-11-07")  # the last reading's local day, 6 before
    body = person.get(f"{app.url}/api/usage-points/{up}/readings", timeout=30,
                      params={"aggregate": "hour", "start": start, "end": end}).json()  # fmt: skip
    assert len(body["series"][0]["points"]) == 7 * 24 + 1  # with the fall-back day's 25th


@given(st.integers(-(10**15), 10**15), st.integers(-9, 3))
def test_an_amount_is_the_double_nearest_its_decimal(amount, power):
    from thirdparty_app.buckets import decimal

    assert decimal(amount, power) == float(Decimal(amount).scaleb(power))
    assert decimal(156560, -6) == 0.15656 and repr(decimal(5356, -5)) == "0.05356"
