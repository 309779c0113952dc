"""The JSON API matches its OpenAPI document; exports per usage point and date range."""

from __future__ import annotations

import csv
import io
import json
import re

import jsonschema
import pytest
import requests

import espi
from tests.thirdparty.test_flow import connect, world  # noqa: F401 - the live custodian + third party


@pytest.fixture(scope="module")
def connected(world):  # noqa: F811
    connect(world)
    return world


def validate(doc, schema_ref, body):
    schema = {"$ref": schema_ref, "components": doc["components"]}
    jsonschema.validate(body, schema)


def test_the_openapi_document_matches_what_is_served(connected):
    base = connected["t_base"]
    doc = requests.get(f"{base}/api/openapi.json", timeout=10).json()  # public
    customer = connected["customer"]
    served = {rule.rule.replace("<int:up_id>", "{up_id}") for rule in connected["third"].url_map.iter_rules()
              if rule.rule.startswith("/api/") and rule.rule != "/api/openapi.json"}  # fmt: skip
    assert served == set(doc["paths"])
    ups = customer.get(f"{base}/api/usage-points", timeout=10).json()
    validate(doc, "#/components/schemas/UsagePoints", ups)
    up = ups[0]["id"]
    for path, ref in (("readings", "Readings"), ("summaries", "Summaries"), ("plans", "Plans")):
        for query in ({}, {"aggregate": "day"}, {"aggregate": "month", "start": "2000-01-01"}):
            if path != "readings" and "aggregate" in query:
                continue
            body = customer.get(
                f"{base}/api/usage-points/{up}/{path}", params=query, timeout=30
            ).json()
            validate(doc, f"#/components/schemas/{ref}", body)
    for bad in ({"aggregate": "fortnight"}, {"start": "yesterday"}):
        r = customer.get(f"{base}/api/usage-points/{up}/readings", params=bad, timeout=10)
        assert r.status_code == 400
        validate(doc, "#/components/schemas/Problem", r.json())
    missing = customer.get(f"{base}/api/usage-points/999999/readings", timeout=10)
    assert missing.status_code == 404


def test_daily_totals_add_up_to_the_readings(connected):
    base = connected["t_base"]
    customer = connected["customer"]
    up = customer.get(f"{base}/api/usage-points", timeout=10).json()[0]["id"]
    raw = customer.get(f"{base}/api/usage-points/{up}/readings", timeout=30).json()
    daily = customer.get(
        f"{base}/api/usage-points/{up}/readings", params={"aggregate": "day"}, timeout=30
    ).json()
    for a, b in zip(raw["series"], daily["series"], strict=True):
        assert sum(p["value"] for p in a["points"]) == pytest.approx(
            sum(p["value"] for p in b["points"])
        )
        assert len(b["points"]) < len(a["points"])
        assert all(p["start"].endswith("Z") for p in b["points"])


@pytest.mark.parametrize("fmt", ["csv", "json", "xml"])
def test_exports(connected, fmt):
    base = connected["t_base"]
    customer = connected["customer"]
    up = customer.get(f"{base}/api/usage-points", timeout=10).json()[0]["id"]
    everything = customer.get(f"{base}/api/usage-points/{up}/readings", timeout=30).json()
    count = sum(len(s["points"]) for s in everything["series"])
    first = everything["series"][0]["points"][0]["start"]
    r = customer.get(f"{base}/usage-points/{up}/export", params={"format": fmt}, timeout=30)
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    if fmt == "csv":
        assert len(list(csv.DictReader(io.StringIO(r.text)))) == count
    elif fmt == "json":
        assert len(json.loads(r.text)) == count
    else:
        assert espi.validate(r.content) == []
        assert sum(1 for _ in espi.parse(r.content).readings()) == count
    later = customer.get(f"{base}/usage-points/{up}/export", timeout=30,
                         params={"format": fmt, "start": first.replace("Z", "+00:00"), "end": first})  # fmt: skip
    assert later.status_code == 200


def test_a_page_says_where_the_data_has_gaps(connected, sample):
    base = connected["t_base"]
    customer = connected["customer"]
    page = customer.upload("bh.xml", sample("burlington_hydro_usage_60min.xml").read_bytes()).text
    up = re.search(r'href="(/usage-points/\d+)"', page.split('id="upload-result"')[1]).group(1)
    shown = customer.get(base + up, timeout=30).text
    assert re.search(
        r'id="freshness">Data up to [\d-]+ [\d:]+ \([^)]+\); gaps: 1, the longest ', shown
    )
