"""The ESPI client against the real data custodian over loopback HTTP: connect (state, PKCE),
token kinds, 200 and 202 with the notification that follows, refresh, revocation, the
provider contract, and bounded retries counted request by request."""

from __future__ import annotations

import io
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

import espi
from espi import client as espi_client
from espi import providers
from espi.errors import AuthError, NotReady, ProviderError, Unavailable
from espi.providers.base import ConnectKind, Credentials, DataKind
from tests.custodian.conftest import REDIRECT, Custodian, Receiver
from tests.scripted import Answer, Scripted, Seen

from .conftest import connect, local_profile, notified, via


def usage_point_ids(client: espi_client.Custodian, credentials: Credentials) -> list[str]:
    sid = credentials.account.rsplit("/", 1)[1]
    out = io.BytesIO()
    client.download(f"Subscription/{sid}/UsagePoint", out, credentials=credentials)
    feed = espi.parse(out.getvalue(), espi.ParseOptions(warn=False))
    return [up.link("self").rsplit("/", 1)[1] for up in feed.usage_points]


# --------------------------------------------------------------------------- connecting


def test_registered_with_its_capabilities() -> None:
    cls = providers.get("custodian")
    assert cls is espi_client.Custodian
    assert cls.capabilities.connect is ConnectKind.OAUTH and cls.capabilities.notifications
    assert DataKind.INTERVALS in cls.capabilities.data


def test_connect_with_state_and_pkce(client: espi_client.Custodian, custodian: Custodian) -> None:
    start = client.begin_connect("", REDIRECT)
    assert start.url.startswith(f"{custodian.base}/datacustodian/test/oauth/v2/authorize?")
    assert "code_challenge_method=S256" in start.url and start.state["state"] in start.url
    assert start.state["code_verifier"] not in start.url
    credentials = connect(client)
    assert credentials.account.startswith(f"{custodian.resource}/Batch/Subscription/")
    assert credentials.extra["authorizationURI"].startswith(f"{custodian.resource}/Authorization/")
    assert credentials.extra["scope"].startswith("FB=")
    assert credentials.access_token and credentials.refresh_token
    assert credentials.expires_at > time.time() + 3000


def test_connect_without_the_right_verifier_is_refused(client: espi_client.Custodian) -> None:
    start = client.begin_connect("", REDIRECT)
    location = requests.get(start.url, allow_redirects=False, timeout=10).headers["Location"]
    answer = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    forged = {**start.state, "code_verifier": "x" * 64}
    with pytest.raises(AuthError, match="invalid_grant"):
        client.finish_connect(forged, answer)
    with pytest.raises(AuthError, match="does not match this session's request"):
        client.finish_connect({**start.state, "state": "another"}, answer)
    with pytest.raises(AuthError, match="declined"):
        client.finish_connect(start.state, {"error": "access_denied", "state": answer["state"]})


# --------------------------------------------------------------------------- token kinds, 200, 202


def test_bulk_is_read_with_the_client_token_then_notified(
    client: espi_client.Custodian, custodian: Custodian, receiver: Receiver, tmp_path: Path
) -> None:
    connect(client)  # a customer, so the Bulk holds data
    mark = len(receiver.bodies)
    got = client.download(client.profile.bulk_uri(), tmp_path / "bulk.xml")
    assert isinstance(got, espi_client.Accepted)  # the customer token would be 403
    assert not (tmp_path / "bulk.xml").exists()
    body = notified(receiver, f"Batch/Bulk/{custodian.creds['bulk_id']}", mark)
    (uri,) = client.notified_accounts(body)
    assert uri.startswith(f"{custodian.resource}/Batch/Bulk/") and "?correlationID=" in uri
    done = client.download(uri, tmp_path / "bulk.xml")
    assert isinstance(done, espi_client.Downloaded) and done.uri == uri
    assert done.size == (tmp_path / "bulk.xml").stat().st_size > 10_000
    assert "atom+xml" in done.content_type
    feed = espi.parse(tmp_path / "bulk.xml", espi.ParseOptions(warn=False))
    assert feed.usage_points and next(feed.readings(), None) is not None


def test_fetch_202_is_not_ready_then_the_notified_uri_answers_200(
    client: espi_client.Custodian, receiver: Receiver
) -> None:
    credentials = connect(client)
    mark = len(receiver.bodies)
    with pytest.raises(
        NotReady, match=r"accepted the request .*\(202\): the data will come by notification"
    ):
        client.fetch(credentials)
    sid = credentials.account.rsplit("/", 1)[1]
    (uri,) = client.notified_accounts(notified(receiver, f"Batch/Subscription/{sid}?", mark))
    out = io.BytesIO()
    got = client.download(uri, out, credentials=credentials)
    assert isinstance(got, espi_client.Downloaded)
    feed = espi.parse(out.getvalue(), espi.ParseOptions(warn=False))
    assert len(feed.usage_points) >= 1 and sum(1 for _ in feed.readings()) > 1000


def test_a_usage_point_answers_200_from_published_min(client: espi_client.Custodian) -> None:
    credentials = connect(client)
    sid = credentials.account.rsplit("/", 1)[1]
    up = usage_point_ids(client, credentials)[0]
    everything, recent = io.BytesIO(), io.BytesIO()
    uri = f"Batch/Subscription/{sid}/UsagePoint/{up}"
    client.download(uri, everything, credentials=credentials)
    readings = list(espi.iter_readings(everything.getvalue()))
    since = max(r.start for r in readings) - 3 * 86400
    got = client.download(
        uri, recent, credentials=credentials, params=client.profile.published(since)
    )
    assert isinstance(got, espi_client.Downloaded)
    newer = list(espi.iter_readings(recent.getvalue()))
    assert 0 < len(newer) < len(readings)
    assert min(r.start for r in newer) >= since - 86400  # whole local-day blocks


def test_client_and_registration_resources(
    client: espi_client.Custodian, custodian: Custodian
) -> None:
    status = io.BytesIO()
    client.download("ReadServiceStatus", status)
    assert espi.parse(status.getvalue()).service_status is not None
    info = io.BytesIO()
    client.download(f"ApplicationInformation/{custodian.creds['application_information_id']}", info)
    (app,) = espi.parse(info.getvalue(), espi.ParseOptions(warn=False)).application_information
    assert app.client_name == "Test Solar"
    without = espi_client.Custodian(
        local_profile(custodian.base, custodian.resource, custodian.creds, registration_token="")
    )
    with pytest.raises(AuthError, match="HTTP 403 insufficient_scope"):  # then the client token
        without.download(
            f"ApplicationInformation/{custodian.creds['application_information_id']}", io.BytesIO()
        )


def test_customer_resources_need_a_customer_token(client: espi_client.Custodian) -> None:
    with pytest.raises(AuthError, match="read with a customer's access token"):
        client.download("Batch/Subscription/1", io.BytesIO())


# --------------------------------------------------------------------------- tokens


def test_client_token_is_cached(flaky, custodian: Custodian, waits: list[float]) -> None:
    client = via(flaky, custodian, waits)
    for _ in range(3):
        client.download("ReadServiceStatus", io.BytesIO())
    proxy, _ = flaky
    assert [s for s in proxy.seen if "/oauth/v2/token" in s] == [
        "POST /datacustodian/oauth/v2/token?"
    ]
    assert len([s for s in proxy.seen if "ReadServiceStatus" in s]) == 3


def test_refresh_returns_a_new_pair_and_the_old_refresh_token_dies(
    client: espi_client.Custodian,
) -> None:
    credentials = connect(client)
    renewed = client.refresh(credentials)
    assert renewed.access_token != credentials.access_token
    assert renewed.refresh_token != credentials.refresh_token
    assert renewed.account == credentials.account and renewed.extra == credentials.extra
    with pytest.raises(AuthError, match="invalid_grant"):
        client.refresh(credentials)  # single use
    assert usage_point_ids(client, renewed)


def test_an_expiring_token_is_renewed_in_place(client: espi_client.Custodian) -> None:
    credentials = connect(client)
    old = (credentials.access_token, credentials.refresh_token)
    credentials.expires_at = int(time.time()) + 30  # within the minute: renewed first
    assert usage_point_ids(client, credentials)
    assert (credentials.access_token, credentials.refresh_token) != old
    assert credentials.expires_at > time.time() + 3000


def test_a_refused_access_token_is_renewed_once(client: espi_client.Custodian) -> None:
    credentials = connect(client)
    credentials.access_token = "stale"
    assert usage_point_ids(client, credentials)
    assert credentials.access_token != "stale"
    credentials.access_token, credentials.refresh_token = "stale", "stale too"
    with pytest.raises(AuthError, match="invalid_grant"):
        usage_point_ids(client, credentials)


def test_disconnect_revokes_the_authorization(client: espi_client.Custodian) -> None:
    credentials = connect(client)
    assert (
        client.disconnect(credentials)
        == "revoked the authorization at Local sandbox (datacustodian)"
    )
    with pytest.raises(AuthError):
        usage_point_ids(client, credentials)
    assert client.disconnect(credentials).startswith("revoked")  # idempotent
    assert client.disconnect(Credentials(account=credentials.account)).startswith(
        "nothing to revoke"
    )


def test_an_authorization_the_custodian_no_longer_knows_counts_as_revoked(tmp_path: Path) -> None:
    def answer(seen: Seen) -> Answer:
        if seen.method == "POST":
            return Answer(
                200, {"Content-Type": "application/json"}, b'{"client_access_token": "c"}'
            )
        return Answer(404, {"Content-Type": "application/json"}, b'{"error": "not_found"}')

    with Scripted(answer) as server:
        client = espi_client.Custodian(
            espi_client.profile(
                "gone", token_url=f"{server.url}/token", resource_base=f"{server.url}/r"
            )
        )
        said = client.disconnect(
            Credentials(extra={"authorizationURI": f"{server.url}/r/Authorization/9"})
        )
        assert said == "the authorization was already gone at gone"
        assert [(s.method, s.path) for s in server.seen] == [
            ("POST", "/token"),
            ("DELETE", "/r/Authorization/9"),
        ]
        assert server.seen[1].headers["Authorization"] == "Bearer c"


def test_token_answers_naming_foreign_uris_are_refused(tmp_path: Path) -> None:
    def answer(seen: Seen) -> Answer:
        body = (b'{"access_token": "a", "refresh_token": "r", "expires_in": 3600, '
                b'"resourceURI": "https://evil.example/Batch/Subscription/1"}')  # fmt: skip
        return Answer(200, {"Content-Type": "application/json"}, body)

    with Scripted(answer) as server:
        client = espi_client.Custodian(
            espi_client.profile(
                "c", token_url=f"{server.url}/token", resource_base=f"{server.url}/r"
            )
        )
        with pytest.raises(espi_client.UnsafeURI, match="outside the resource base"):
            client.finish_connect({"state": "s"}, {"state": "s", "code": "c"})


# --------------------------------------------------------------------------- notifications


def test_notified_accounts_refuses_what_is_not_ours(
    client: espi_client.Custodian, custodian: Custodian
) -> None:
    base = custodian.resource
    ok = espi.dumps(espi.BatchList(resources=[f"{base}/Batch/Bulk/1?correlationID=a"] * 2))
    assert client.notified_accounts(ok) == [f"{base}/Batch/Bulk/1?correlationID=a"]
    for uris, why in [
        ([f"{base}/../../../../?/Batch/Bulk/x"], "outside the resource base"),
        ([f"{base}/%2e%2e/%2e%2e/x"], "outside the resource base"),
        (["https://evil.example/Batch/Bulk/1"], "outside the resource base"),
        ([f"{base}/Batch/Bulk/1?x=1"], r"query parameter\(s\) x"),
    ]:
        with pytest.raises(ValueError, match=why):
            client.notified_accounts(espi.dumps(espi.BatchList(resources=uris)))
    with pytest.raises(ValueError, match="not a BatchList"):
        client.notified_accounts(
            espi.dumps(espi.model.ServiceStatus(current_status=espi.ESPIServiceStatus.NORMAL))
        )
    with pytest.raises(espi.ParseError):
        client.notified_accounts(b"<BatchList")


# --------------------------------------------------------------------------- bounded retries


def test_a_custodian_answering_503_forever_is_asked_exactly_retries_plus_one_times(
    flaky, custodian: Custodian, waits: list[float]
) -> None:
    client = via(flaky, custodian, waits)
    proxy, _ = flaky
    client.client_token()
    proxy.fail("Batch/Bulk", 10**6)
    try:
        with pytest.raises(Unavailable, match="HTTP 503") as caught:
            client.download(client.profile.bulk_uri(), io.BytesIO())
    finally:
        proxy.fail("Batch/Bulk", 0)
    assert caught.value.status == 503
    assert len([s for s in proxy.seen if "Batch/Bulk" in s]) == 4  # retries=3, then raised
    assert waits == [0.5, 1.0, 2.0]


def test_a_custodian_answering_202_forever_is_asked_once_per_fetch(
    flaky, custodian: Custodian, waits: list[float]
) -> None:
    client = via(flaky, custodian, waits)
    proxy, _ = flaky
    for _ in range(2):
        got = client.download(client.profile.bulk_uri(), io.BytesIO())
        assert isinstance(got, espi_client.Accepted)
    assert len([s for s in proxy.seen if "Batch/Bulk" in s]) == 2 and waits == []


def test_a_transient_503_is_retried_and_the_download_completes(
    flaky, custodian: Custodian, waits: list[float], tmp_path: Path
) -> None:
    client = via(flaky, custodian, waits)
    proxy, _ = flaky
    proxy.fail("ReadServiceStatus", 2)
    got = client.download("ReadServiceStatus", tmp_path / "status.xml")
    assert isinstance(got, espi_client.Downloaded) and waits == [0.5, 1.0]
    assert len([s for s in proxy.seen if "ReadServiceStatus" in s]) == 3


def test_nothing_outside_the_base_is_sent(flaky, custodian: Custodian, waits: list[float]) -> None:
    client = via(flaky, custodian, waits)
    proxy, url = flaky
    base = client.profile.resource_base
    for uri in (f"{base}/../../../../?/Batch/Bulk/x", f"{base}/%2e%2e/%2E%2E/%2e%2e/%2e%2e/?/Batch/Bulk/x",
                f"{base}/..%2f..%2f..%2f..%2f?/Batch/Bulk/x", f"{url}/?/Batch/Bulk/x",
                f"{base}/../../../../datacustodian/oauth/v2/token"):  # fmt: skip
        with pytest.raises(espi_client.UnsafeURI, match=f"outside the resource base {base}"):
            client.download(uri, io.BytesIO())
    assert proxy.seen == []


def test_the_throttle_is_called_before_every_request(
    flaky, custodian: Custodian, waits: list[float]
) -> None:
    calls: list[int] = []
    client = via(flaky, custodian, waits, throttle=lambda: calls.append(1))
    proxy, _ = flaky
    proxy.fail("ReadServiceStatus", 1)
    client.download("ReadServiceStatus", io.BytesIO())
    assert len(calls) == len(proxy.seen) == 3  # token, 503, 200


def test_custodian_errors_are_provider_errors(client: espi_client.Custodian) -> None:
    with pytest.raises(ProviderError, match="HTTP 404"):
        client.download("Batch/Nothing/1", io.BytesIO(), credentials=connect(client))
