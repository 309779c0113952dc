"""LocalTimeParameters: DST rule codec and local time, checked against zoneinfo."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

import espi
from espi import timeparams as tp
from espi.model import LocalTimeParameters

PGE = LocalTimeParameters(
    tz_offset=-28800, dst_offset=3600, dst_start_rule="360E2000", dst_end_rule="B40E2000"
)
ZONES = [  # US and Canadian zones with distinct rules, and two without DST
    "America/Los_Angeles", "America/Denver", "America/Phoenix", "America/Chicago",
    "America/New_York", "America/Anchorage", "America/Halifax", "America/St_Johns",
    "America/Regina",
]  # fmt: skip


def test_pge_rules_decode_to_the_us_rules():
    start, end = tp.DstRule.decode("360E2000"), tp.DstRule.decode("B40E2000")
    assert start == tp.DstRule(month=3, operator=3, day_of_week=7, hour=2)  # 2nd Sunday of March
    assert end == tp.DstRule(month=11, operator=2, day_of_week=7, hour=2)  # 1st Sunday of Nov
    assert (start.day(2024), end.day(2024)) == (
        datetime(2024, 3, 10).date(),
        datetime(2024, 11, 3).date(),
    )
    assert tp.from_zone("America/Los_Angeles", 2024) == PGE


@given(
    st.builds(
        tp.DstRule,
        month=st.integers(1, 12),
        operator=st.integers(2, 7),
        day_of_week=st.integers(1, 7),
        hour=st.integers(0, 23),
        seconds=st.integers(0, 3599),
    )
)
def test_rules_encode_and_decode(rule):
    assert tp.DstRule.decode(rule.encode()) == rule
    assert rule.day(2031).month == rule.month


@pytest.mark.parametrize("name", ZONES)
def test_every_hour_2000_to_2040_agrees_with_zoneinfo(name):
    """For each year, the zone's LocalTimeParameters for that year gives zoneinfo's offset at
    every hour; on the change days, every 15 minutes, the same wall time and fold, and local
    times convert back to the same instants."""
    zi = ZoneInfo(name)
    for year in range(2000, 2041):
        ours = tp.zone(tp.from_zone(name, year))
        first = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
        last = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
        for t in range(first, last, 3600):
            mine = ours.tz_offset + (ours.dst_offset if ours.in_dst(t) else 0)
            assert mine == datetime.fromtimestamp(t, zi).utcoffset().total_seconds(), (name, t)
        for change in (ours.start, ours.end):
            if change is None:
                continue
            day = datetime.combine(change.day(year), datetime.min.time())
            utc_day = int(datetime.combine(day.date(), datetime.min.time(), UTC).timestamp())
            for minutes in range(-12 * 60, 36 * 60, 15):
                t = utc_day + minutes * 60
                a, b = datetime.fromtimestamp(t, ours), datetime.fromtimestamp(t, zi)
                assert (a.replace(tzinfo=None), a.fold) == (b.replace(tzinfo=None), b.fold)
                for fold in (0, 1):
                    wall = (day + timedelta(minutes=minutes)).replace(fold=fold)
                    assert (
                        wall.replace(tzinfo=ours).timestamp() == wall.replace(tzinfo=zi).timestamp()
                    )


def test_to_local_and_from_local_across_the_fall_back_hour():
    first = tp.to_local(PGE, 1730623800)  # 2024-11-03 08:50Z = 01:50 PDT
    second = tp.to_local(PGE, 1730623800 + 3600)  # 01:50 PST, the same wall clock
    assert (first.hour, first.minute, first.fold, second.fold) == (1, 50, 0, 1)
    assert first.utcoffset() == timedelta(hours=-7) and second.utcoffset() == timedelta(hours=-8)
    wall = datetime(2024, 11, 3, 1, 50)
    assert tp.from_local(PGE, wall) == 1730623800
    assert tp.from_local(PGE, wall.replace(fold=1)) == 1730623800 + 3600


def test_zone_names_from_parameters():
    assert tp.to_zone_name(PGE, 2024) == "America/Los_Angeles"
    assert tp.to_zone_name(tp.from_zone("America/Halifax", 2024), 2024) == "America/Halifax"
    phoenix = LocalTimeParameters(
        tz_offset=-25200, dst_offset=0, dst_start_rule="FFFFFFFF", dst_end_rule="FFFFFFFF"
    )
    assert tp.to_zone_name(phoenix, 2024) == "America/Phoenix"
    assert tp.zone(phoenix).utcoffset(datetime(2024, 7, 1)) == timedelta(hours=-7)


def test_real_file_forms_are_tolerated_with_warnings():
    with pytest.warns(espi.EspiWarning, match="truncated"):
        assert tp.DstRule.decode("B40E") == tp.DstRule(month=11, operator=2, day_of_week=7)
    assert tp.DstRule.decode("0x360E2000") == tp.DstRule.decode("360E2000")
    assert tp.DstRule.decode("FFFFFFFF") is None
    with pytest.warns(espi.EspiWarning, match="not hexadecimal"):
        assert tp.DstRule.decode("spring") is None
    with pytest.warns(espi.EspiWarning, match="impossible"):
        assert tp.DstRule.decode("00000000") is None
    wrong_sign = LocalTimeParameters(
        tz_offset=28800, dst_offset=3600, dst_start_rule="360E2000", dst_end_rule="B40E2000"
    )
    with pytest.warns(espi.EspiWarning, match="read as -28800"):
        zone = tp.zone(wrong_sign)
    assert zone.utcoffset(datetime(2024, 1, 1)) == timedelta(hours=-8)


def test_local_time_parameters_of_the_real_samples(sample):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", espi.EspiWarning)
        ltp = espi.parse(sample("pgesmd_2019-10-17.xml")).local_time_parameters[0]
    assert tp.to_zone_name(ltp, 2019) == "America/Los_Angeles"
    assert tp.to_local(ltp, 1571295600).isoformat() == "2019-10-17T00:00:00-07:00"


def test_a_states_zone() -> None:
    """For sources that say where a home is but not its local time (WattzOn: a ZIP code)."""
    assert tp.state_zone("ri") == "America/New_York"
    assert tp.state_zone("AZ") == "America/Phoenix"
    assert tp.state_zone("") is None and tp.state_zone("XX") is None
    for name in tp.STATE_ZONES.values():
        assert tp.from_zone(name).tz_offset is not None  # every one is a real zone
