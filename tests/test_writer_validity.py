"""The writer's output is always ESPI 4.0-valid: whatever the model objects hold, a required
element the input lacks or breaks is repaired by a documented rule or its resource is left out
with a warning."""

from __future__ import annotations

import dataclasses
import os
import warnings
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import espi
from espi import model as m
from espi.codes import Code
from espi.xmlmap import field_specs

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OPTS = espi.WriteOptions(now=NOW)
#: Strings that matter to the schema's enumerations and patterns, among arbitrary text.
WORDS = ["code", "token", "Bearer", "client_secret_basic", "authorization_code", "FFFFFFFF",
         "360E2000", "B40E", "SYS", "AG", "", " ", "http://x.test/a b", "ff", "0x1"]  # fmt: skip


def values(kind: type, depth: int) -> st.SearchStrategy:
    if kind is str:
        return st.sampled_from(WORDS) | st.text(max_size=12) | st.just("x" * 300)
    if kind is bool:
        return st.booleans()
    if kind is float:
        return st.floats(allow_nan=True, allow_infinity=True)
    if isinstance(kind, type) and issubclass(kind, Code):
        return st.sampled_from(list(kind)) | st.integers(-70_000, 70_000).map(kind)
    if kind is int:
        return st.integers(-(2**70), 2**70) | st.integers(-(10**6), 10**10)
    if dataclasses.is_dataclass(kind):
        return st.none() if depth > 1 else objects(kind, depth + 1)
    raise AssertionError(kind)


def objects(cls: type, depth: int = 0) -> st.SearchStrategy:
    """Any instance of a model class: each XML field absent, valid or not."""
    fields = {}
    for spec in field_specs(cls).values():
        one = values(spec.kind, depth)
        fields[spec.attr] = st.lists(one, max_size=1) if spec.is_list else st.none() | one
    if issubclass(cls, m.Resource):
        fields["id"] = st.none() | st.text(max_size=20)
        fields["title"] = st.none() | st.text(max_size=20)
        fields["published"] = st.none() | st.datetimes(
            min_value=datetime(1, 1, 1),  # noqa: DTZ001 - st.datetimes wants naive bounds
            timezones=st.sampled_from([UTC, timezone(timedelta(hours=14))]),
        )
    return st.builds(cls, **fields)


READINGS = st.builds(
    m.IntervalReading,
    start=st.none() | st.integers(-(2**64), 2**64),
    duration=st.none() | st.integers(-(2**33), 2**33),
    value=st.none() | st.integers(-(2**50), 2**50),
    cost=st.none() | st.integers(-(2**50), 2**50),
    qualities=st.lists(st.integers(-5, 70_000).map(espi.QualityOfReading), max_size=2).map(tuple),
    tou=st.none() | st.integers(-40_000, 40_000),
)
RESOURCES = [c for c in vars(m).values() if isinstance(c, type) and issubclass(c, m.Resource)
             and c not in (m.Resource, m.CustomerResource, m.OrganisationRole, m.Document,
                           m.Location, m.Asset, m.EndDevice)]  # fmt: skip


@st.composite
def documents(draw):
    """A usage point with its meter reading, reading type, block and summary, plus any other
    resources, every field arbitrary."""
    up = draw(objects(m.UsagePoint))
    rt = draw(objects(m.ReadingType))
    mr = draw(objects(m.MeterReading))
    block = draw(objects(m.IntervalBlock))
    block.readings = draw(st.lists(READINGS, max_size=4))
    summary = draw(objects(m.UsageSummary))
    ltp = draw(objects(m.LocalTimeParameters))
    mr.reading_type, mr.usage_point, block.meter_reading = rt, up, mr
    summary.usage_point, up.local_time_parameters = up, ltp
    up.meter_readings, mr.interval_blocks, up.usage_summaries = [mr], [block], [summary]
    others = draw(st.lists(st.sampled_from(RESOURCES).flatmap(objects), max_size=2))
    return [ltp, up, rt, mr, block, summary, *others]


@settings(
    max_examples=int(os.environ.get("WRITER_EXAMPLES", "60")),  # more for a long run
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(documents())
def test_arbitrary_model_objects_are_written_as_valid_espi(resources):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", espi.EspiWarning)
        out = espi.dumps(resources, OPTS)
    assert espi.validate(out) == []


def application(**changes):
    """An ApplicationInformation with everything ESPI 4.0 requires."""
    fields = dict(
        data_custodian_id="dc", data_custodian_application_status=1,
        third_party_notify_uri="https://tp.test/notify",
        authorization_server_authorization_endpoint="https://dc.test/authorize",
        authorization_server_token_endpoint="https://dc.test/token",
        data_custodian_bulk_request_uri="https://dc.test/bulk",
        data_custodian_resource_endpoint="https://dc.test/resource", client_secret="s",
        client_name="tp", redirect_uri=["https://tp.test/cb"], client_id="c", software_id="sw",
        software_version="1", client_id_issued_at=1, client_secret_expires_at=0,
        token_endpoint_auth_method="client_secret_basic", scope=["FB=1_3"],
        grant_types=["authorization_code", "refresh_token"], response_types="code",
        registration_client_uri="https://dc.test/reg", registration_access_token="t",
    )  # fmt: skip
    fields["data_custodian_application_status"] = espi.DataCustodianApplicationStatus(1)
    return m.ApplicationInformation(**{**fields, **changes})


@pytest.mark.parametrize(
    "resource, repaired, warning",
    [
        (application(response_types="token"), b"<espi:response_types>code<",
         "response_types is not valid: written as 'code'"),
        (m.UsagePoint(service_category=m.ServiceCategory()), None,
         "ServiceCategory left out: kind, which ESPI 4.0 requires, is missing"),
        (m.UsageSummary(billing_period=m.DateTimeInterval(start=100, duration=50)),
         b"<espi:statusTimeStamp>150<", "status_time_stamp is missing: written as 150"),
        (m.LocalTimeParameters(tz_offset=-18000), b"<espi:dstStartRule>FFFFFFFF<",
         "dst_start_rule is missing: written as 'FFFFFFFF'"),
        (application(grant_types=["implicit"]), None,
         "ApplicationInformation left out: grant_types, which ESPI 4.0 requires, is not valid"),
    ],
)  # fmt: skip
def test_repair_rules(resource, repaired, warning):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = espi.dumps([resource], OPTS)
    assert any(warning in str(w.message) for w in caught), [str(w.message) for w in caught]
    assert espi.validate(out) == []
    if repaired is not None:
        assert repaired in out


def test_a_complete_application_information_is_written_as_it_is():
    assert espi.validate(espi.dumps([application()], OPTS)) == []
