"""The ESPI client against the real data custodian on loopback (served and seeded as in
tests/custodian), directly and through a proxy that can fail; and the client's helpers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from werkzeug.serving import make_server

from espi import client as espi_client
from espi.providers.base import Credentials
from tests.custodian.conftest import REDIRECT, Custodian, Receiver, custodian, receiver
from tests.thirdparty.proxy import Flaky

__all__ = ["custodian", "receiver"]  # the live custodian and its notification receiver


def local_profile(
    base: str, resource: str, creds: dict[str, Any], **values: Any
) -> espi_client.CustodianProfile:
    """The ``local`` profile pointed at a custodian served at ``base``."""
    settings = {
        "authorize_url": f"{base}/datacustodian/test/oauth/v2/authorize",
        "token_url": f"{base}/datacustodian/oauth/v2/token",
        "resource_base": resource,
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
        "bulk_id": creds["bulk_id"],
        "registration_token": creds["registration_access_token"],
        "application_information_id": str(creds["application_information_id"]),
        "requests_per_second": 1000.0,
    }
    return espi_client.profile("local", **{**settings, **values})


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(custodian: Custodian, waits: list[float]) -> espi_client.Custodian:
    """A client of the live custodian that records its back-off waits instead of sleeping."""
    return espi_client.Custodian(
        local_profile(custodian.base, custodian.resource, custodian.creds), sleep=waits.append
    )


@pytest.fixture(scope="module")
def flaky(custodian: Custodian) -> Iterator[tuple[Flaky, str]]:
    """A proxy in front of the custodian that records requests and can answer 503."""
    proxy = Flaky(target=custodian.base)
    server = make_server("127.0.0.1", 0, proxy, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield proxy, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def via(
    flaky: tuple[Flaky, str], custodian: Custodian, waits: list[float], **kw: Any
) -> espi_client.Custodian:
    """A client that reaches the custodian through the proxy (its URIs then start with the
    proxy's address; the custodian's answers name its own, so only paths are compared)."""
    proxy, url = flaky
    proxy.seen.clear()
    return espi_client.Custodian(
        local_profile(url, f"{url}/GreenButtonConnect/espi/1_1/resource", custodian.creds),
        sleep=waits.append,
        **kw,
    )


def connect(client: espi_client.Custodian) -> Credentials:
    """A customer's consent through the custodian's test authorize endpoint (no login), then
    the code exchanged by the client."""
    start = client.begin_connect("", REDIRECT)
    answer = requests.get(start.url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    return client.finish_connect(start.state, query)


def notified(receiver: Receiver, part: str, after: int = 0, timeout: float = 20) -> bytes:
    """The first notification body naming ``part`` among those that came after the first
    ``after`` (the receiver is shared by the tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for body in list(receiver.bodies)[after:]:
            if part.encode() in body:
                return body
        time.sleep(0.05)
    raise AssertionError(f"no notification naming {part} within {timeout} s")
