"""The data custodian over real HTTP, driven as a third party written from PG&E's documentation."""

from __future__ import annotations

import json
import re

import pytest
import requests
from click.testing import CliRunner

import espi
from datacustodian import create_app
from tests.custodian.conftest import REDIRECT


def valid(resp: requests.Response) -> espi.Feed:
    assert resp.status_code == 200, resp.text[:300]
    assert resp.headers["Content-Type"].startswith("application/atom+xml")
    assert espi.validate(resp.content) == []
    return espi.parse(resp.content)


# --------------------------------------------------------------------------- registration, OAuth


def test_register_client_prints_credentials(tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/r.sqlite",
                      "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite"})  # fmt: skip
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init-db"]).exit_code == 0
    out = runner.invoke(args=["register-client", "--name", "N", "--redirect-uri", "https://tp.test/cb",
                              "--notification-uri", "https://tp.test/espi/1_1/Notification"])  # fmt: skip
    assert out.exit_code == 0, out.output
    creds = json.loads(out.output)
    assert {"client_id", "client_secret", "registration_access_token", "application_information_id",
            "bulk_id"} <= set(creds)  # fmt: skip


def test_client_credentials_answer_as_pge_does(custodian):
    r = custodian.token(grant_type="client_credentials")
    assert r.status_code == 200
    body = r.json()
    assert (
        "client_access_token" in body
        and "access_token" not in body
        and body["token_type"] == "Bearer"
    )
    assert (
        requests.get(f"{custodian.base}/datacustodian/oauth/v2/token", timeout=5).status_code == 405
    )
    bad = requests.post(f"{custodian.base}/datacustodian/oauth/v2/token", data={"grant_type": "client_credentials"},
                        auth=(custodian.creds["client_id"], "wrong"), timeout=5)  # fmt: skip
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    post_auth = requests.post(
        f"{custodian.base}/datacustodian/oauth/v2/token",
        data={"grant_type": "client_credentials", "client_id": custodian.creds["client_id"],
              "client_secret": custodian.creds["client_secret"]}, timeout=5,
    )  # fmt: skip
    assert post_auth.status_code == 401, "PG&E takes HTTP Basic client authentication only"


def test_code_exchange_and_refresh(custodian):
    tokens = custodian.customer_tokens()
    assert re.fullmatch(rf"{custodian.resource}/Batch/Subscription/\d+", tokens["resourceURI"])
    assert re.fullmatch(rf"{custodian.resource}/Authorization/\d+", tokens["authorizationURI"])
    refreshed = custodian.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert (
        new["access_token"] != tokens["access_token"]
        and new["refresh_token"] != tokens["refresh_token"]
    )
    again = custodian.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    sid = tokens["resourceURI"].rsplit("/", 1)[1]
    assert custodian.get(f"/Subscription/{sid}/UsagePoint", new["access_token"]).status_code == 200


def test_a_code_works_once(custodian):
    code = custodian.code()
    first = custodian.token(grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    second = custodian.token(grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert first.status_code == 200 and second.status_code == 400


def test_login_and_consent_pages(custodian):
    browser = requests.Session()
    authorize = "/datacustodian/oauth/v2/authorize"
    params = {"response_type": "code", "client_id": custodian.creds["client_id"], "redirect_uri": REDIRECT,
              "state": "s1", "scope": custodian.creds["scope"]}  # fmt: skip
    r = browser.get(custodian.base + authorize, params=params, timeout=10)
    assert "Sign in to share your energy data" in r.text  # redirected to the login page
    bad = browser.post(r.url, data={"username": "bob", "password": "nope"}, timeout=10)
    assert bad.status_code == 401 and "do not match" in bad.text
    consent = browser.post(r.url, data={"username": "bob", "password": "sandbox-bob"}, timeout=10)
    assert "Test Solar</strong> asks for your energy data" in consent.text
    assert "Readings every 15 minutes or 1 hour" in consent.text and "Home gas" in consent.text
    ids = re.findall(r'name="usage_point" value="(\d+)"', consent.text)
    approved = browser.post(consent.url, data={"decision": "approve", "usage_point": ids[:1]},
                            allow_redirects=False, timeout=10)  # fmt: skip
    assert approved.status_code == 302 and "code=" in approved.headers["Location"]
    code = re.search(r"code=([^&]+)", approved.headers["Location"]).group(1)
    tokens = custodian.token(
        grant_type="authorization_code", code=code, redirect_uri=REDIRECT
    ).json()
    sid = tokens["resourceURI"].rsplit("/", 1)[1]
    feed = valid(custodian.get(f"/Subscription/{sid}/UsagePoint", tokens["access_token"]))
    assert len(feed.usage_points) == 1, "only the service agreement the customer chose"
    denied = browser.post(consent.url, data={"decision": "deny"}, allow_redirects=False, timeout=10)
    assert "error=access_denied" in denied.headers["Location"]


# --------------------------------------------------------------------------- every row


@pytest.fixture(scope="module")
def tokens(custodian):
    customer = custodian.customer_tokens()
    sid = customer["resourceURI"].rsplit("/", 1)[1]
    access = customer["access_token"]
    feed = valid(custodian.get(f"/Subscription/{sid}/UsagePoint", access))
    up = feed.usage_points[0].link("self").rsplit("/", 1)[1]
    full = valid(custodian.get(f"/Batch/Subscription/{sid}/UsagePoint/{up}", access))
    mr = full.meter_readings[0].link("self").rsplit("/", 1)[1]
    block = full.interval_blocks[0].link("self").rsplit("/", 1)[1]
    summary = full.usage_summaries[0].link("self").rsplit("/", 1)[1]
    rt = full.reading_types[0].link("self").rsplit("/", 1)[1]
    return {
        "access_token": access, "client_access_token": custodian.client_token(),
        "registration_access_token": custodian.creds["registration_access_token"],
        "sid": sid, "up": up, "mr": mr, "block": block, "summary": summary, "rt": rt,
        "app": custodian.creds["application_information_id"],
    }  # fmt: skip


SYNC_ROWS = [
    ("/DownloadSampleData", "client_access_token"),
    ("/ApplicationInformation/{app}", "registration_access_token"),
    ("/ReadServiceStatus", "client_access_token"),
    ("/LocalTimeParameters", "access_token"),
    ("/LocalTimeParameters/1", "access_token"),
    ("/Authorization", "client_access_token"),
    ("/Authorization/{sid}", "client_access_token"),
    ("/Subscription/{sid}/UsagePoint", "access_token"),
    ("/Subscription/{sid}/UsagePoint/{up}", "access_token"),
    ("/Batch/Subscription/{sid}/UsagePoint/{up}", "access_token"),
    ("/ReadingType", "access_token"),
    ("/ReadingType/{rt}", "access_token"),
    ("/Subscription/{sid}/UsagePoint/{up}/UsageSummary", "access_token"),
    ("/Subscription/{sid}/UsagePoint/{up}/UsageSummary/{summary}", "access_token"),
    ("/Subscription/{sid}/UsagePoint/{up}/MeterReading", "access_token"),
    ("/Subscription/{sid}/UsagePoint/{up}/MeterReading/{mr}", "access_token"),
    ("/Subscription/{sid}/UsagePoint/{up}/MeterReading/{mr}/IntervalBlock", "access_token"),
    ("/Subscription/{sid}/UsagePoint/{up}/MeterReading/{mr}/IntervalBlock/{block}", "access_token"),
    ("/Batch/RetailCustomer/{sid}", "access_token"),
    ("/Batch/RetailDRPrgInfo/{sid}", "access_token"),
]
KINDS = ("access_token", "client_access_token", "registration_access_token")


@pytest.mark.parametrize("path, kind", SYNC_ROWS)
def test_sync_rows_demand_their_kind_of_token(custodian, tokens, path, kind):
    url = path.format(**tokens)
    r = custodian.get(url, tokens[kind])
    if "ServiceStatus" in path or "ApplicationInformation" in path:
        assert r.status_code == 200 and espi.validate(r.content) == []
    else:
        valid(r)
    missing = custodian.get(url)
    assert missing.status_code == 401 and missing.json()["error"] == "invalid_request"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert custodian.get(url, "not-a-token").status_code == 401
    for other in KINDS:
        if other != kind:
            wrong = custodian.get(url, tokens[other])
            assert wrong.status_code == 403, (url, other, wrong.text)
            assert wrong.json()["error"] in ("insufficient_scope", "access_denied")


def test_customer_information_follows_the_scope(custodian, tokens):
    feed = valid(
        custodian.get("/Batch/RetailCustomer/{sid}".format(**tokens), tokens["access_token"])
    )
    kinds = {type(e).__name__ for e in feed.entries}
    assert kinds == {"Customer", "CustomerAccount"}  # FB 54 and 57: no service location (58)
    assert feed.retail_customer.customers[0].customer_name.endswith("Sandbox")


def test_a_customer_token_sees_only_its_own_subscription(custodian, tokens):
    other = custodian.customer_tokens()["resourceURI"].rsplit("/", 1)[1]
    assert (
        custodian.get(f"/Subscription/{other}/UsagePoint", tokens["access_token"]).status_code
        == 403
    )
    assert (
        custodian.get(
            f"/Batch/Subscription/{tokens['sid']}/UsagePoint/999", tokens["access_token"]
        ).status_code
        == 403
    )


def test_published_min_and_max(custodian, tokens):
    path = "/Subscription/{sid}/UsagePoint/{up}/MeterReading/{mr}/IntervalBlock".format(**tokens)
    everything = valid(custodian.get(path, tokens["access_token"])).interval_blocks
    first = everything[0].interval.start
    iso = espi.model.to_datetime(first + 86400).strftime("%Y-%m-%dT%H:%M:%SZ")
    by_epoch = valid(
        custodian.get(path, tokens["access_token"], **{"published-min": str(first + 86400)})
    )
    by_iso = valid(custodian.get(path, tokens["access_token"], **{"published-min": iso}))
    assert len(by_epoch.interval_blocks) == len(by_iso.interval_blocks) == len(everything) - 1
    one_day = valid(custodian.get(path, tokens["access_token"], **{"published-min": str(first),
                                                                   "published-max": str(first + 3600)}))  # fmt: skip
    assert len(one_day.interval_blocks) == 1
    assert len(list(one_day.readings())) == 96  # PG&E: an IntervalBlock is one day
    bad = custodian.get(path, tokens["access_token"], **{"published-min": "yesterday"})
    assert bad.status_code == 400 and "published-min" in bad.json()["error_description"]


def test_large_answers_are_written_as_they_are_sent(custodian, tokens):
    """A usage point's data (and Batch, Bulk, block lists) is streamed by espi.FeedWriter, the
    blocks built one at a time; it says what the in-memory writer says of the same data (the
    custodian once built the whole answer, then espi.dumps held it: 2.4x the reader's time)."""
    from sqlalchemy import select

    from appkit import database as appdb
    from datacustodian import db, store

    path = "/Batch/Subscription/{sid}/UsagePoint/{up}".format(**tokens)
    r = requests.get(custodian.resource + path, headers={"Authorization": f"Bearer {tokens['access_token']}"},
                     stream=True, timeout=30)  # fmt: skip
    assert r.status_code == 200 and "Content-Length" not in r.headers
    assert r.headers["Transfer-Encoding"] == "chunked"
    streamed = espi.parse(r.raw.read())
    with custodian.app.test_request_context():
        s = appdb.session()
        row = s.scalar(select(db.UsagePoint).where(db.UsagePoint.public_id == tokens["up"]))
        in_memory = espi.parse(espi.dumps(espi.builder.feed(store.usage_point(s, row)),
                                          store.options(tokens["sid"])))  # fmt: skip

    def content(feed: espi.Feed) -> list[tuple[str, str | None, list[espi.Link]]]:
        return [(type(e).__name__, e.id, e.links) for e in feed.entries]

    assert content(streamed) == content(in_memory)
    assert list(streamed.readings()) == list(in_memory.readings())
    assert [s.billing_period for s in streamed.usage_summaries] == [
        s.billing_period for s in in_memory.usage_summaries
    ]


# --------------------------------------------------------------------------- asynchronous rows


ASYNC_ROWS = [
    ("/Batch/Subscription/{sid}", "access_token"),
    ("/Batch/Bulk/{bulk}", "client_access_token"),
    ("/Batch/BulkRetailCustomerInfo/{bulk}", "client_access_token"),
    ("/Batch/BulkRetailDRPrgInfo/{bulk}", "client_access_token"),
]


@pytest.mark.parametrize("path, kind", ASYNC_ROWS)
def test_async_rows_answer_202_then_notify(custodian, tokens, receiver, path, kind):
    url = path.format(bulk=custodian.creds["bulk_id"], **tokens)
    before = len(receiver.bodies)
    r = custodian.get(url, tokens[kind], **{"published-min": "2000-01-01T00:00:00Z"})
    assert r.status_code == 202 and r.content == b""
    body = receiver.wait(before + 1)[before]
    assert espi.validate(body) == []
    (uri,) = espi.parse(body).batch_list.resources
    assert uri.startswith(custodian.resource + url.split("?")[0])
    data = valid(custodian.get(uri, tokens[kind]))
    if "Subscription" in path or "Bulk/" in path:
        assert sum(1 for _ in data.readings()) > 1000
    other = "client_access_token" if kind == "access_token" else "access_token"
    assert custodian.get(uri, tokens[other]).status_code == 403


def test_notifications_are_retried_while_the_third_party_is_down(custodian, tokens, receiver):
    before = len(receiver.bodies)
    receiver.fail_next = 2
    attempts = receiver.attempts
    r = custodian.get("/Batch/Subscription/{sid}".format(**tokens), tokens["access_token"])
    assert r.status_code == 202
    receiver.wait(before + 1, timeout=30)
    assert receiver.attempts - attempts == 3


# --------------------------------------------------------------------------- revocation


def test_revocation_stops_the_customer_tokens(custodian):
    customer = custodian.customer_tokens()
    aid = customer["authorizationURI"].rsplit("/", 1)[1]
    sid = customer["resourceURI"].rsplit("/", 1)[1]
    client = custodian.client_token()
    assert (
        custodian.get(f"/Subscription/{sid}/UsagePoint", customer["access_token"]).status_code
        == 200
    )
    r = requests.delete(f"{custodian.resource}/Authorization/{aid}", headers={"Authorization": f"Bearer {client}"},
                        timeout=10)  # fmt: skip
    assert r.status_code == 204
    gone = custodian.get(f"/Subscription/{sid}/UsagePoint", customer["access_token"])
    assert gone.status_code == 401 and "revoked" in gone.json()["error_description"]
    assert (
        custodian.token(
            grant_type="refresh_token", refresh_token=customer["refresh_token"]
        ).status_code
        == 400
    )
    auth = valid(custodian.get(f"/Authorization/{aid}", client)).authorizations[0]
    assert auth.status == espi.AuthorizationStatus.REVOKED


def test_cli_is_documented(tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/d.sqlite",
                      "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite"})  # fmt: skip
    result = CliRunner().invoke(app.cli, ["--help"])
    assert "register-client" in result.output and "seed" in result.output
