"""What the request loop does with hostile or failing servers, over real HTTP on loopback:
redirects (for every provider, and none at all for the custodian client), Retry-After,
documents streamed to disk in flat memory, bodies that break off, the rate limit."""

from __future__ import annotations

import io
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from espi import client as espi_client
from espi.errors import ProviderError, RateLimited, Unavailable
from espi.providers.base import Credentials, Pacer, Provider
from tests.scripted import Answer, Scripted, Seen, always

TOKEN = Answer(200, {"Content-Type": "application/json"},
               json.dumps({"client_access_token": "client-token", "expires_in": 3600}).encode())  # fmt: skip


def custodian_at(url: str, waits: list[float] | None = None, **kw: Any) -> espi_client.Custodian:
    made = espi_client.profile("scripted", token_url=f"{url}/token", resource_base=f"{url}/espi/1_1/resource",
                               requests_per_second=1000.0)  # fmt: skip
    return espi_client.Custodian(made, sleep=(waits if waits is not None else []).append, **kw)


def with_token(then: Any) -> Any:
    """A custodian that gives a client token, then answers resource requests with ``then``."""
    return lambda seen: TOKEN if seen.path == "/token" else then(seen)


class Plain(Provider):
    """Any provider: the base's request loop as Pelm, WattzOn, Griddy and WattShift use it."""

    slug: ClassVar[str] = "plain"


@pytest.fixture
def foreign() -> Iterator[Scripted]:
    with Scripted(always(200, b"<feed>a foreign feed</feed>")) as server:
        yield server


# --------------------------------------------------------------------------- redirects


def test_the_custodian_client_follows_no_redirect(foreign: Scripted, tmp_path: Path) -> None:
    feed = f"{foreign.url}/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1"
    with Scripted(with_token(lambda seen: Answer(302, {"Location": feed}))) as server:
        client = custodian_at(server.url)
        with pytest.raises(
            ProviderError,
            match=f"redirected to {feed}: not followed, this client follows no redirect",
        ):
            client.download("Batch/Bulk/1", tmp_path / "bulk.xml")
        same = f"{server.url}/espi/1_1/resource/Batch/Bulk/2"
        server.answer = with_token(lambda seen: Answer(307, {"Location": same}))
        with pytest.raises(ProviderError, match="follows no redirect") as caught:
            client.download("Batch/Bulk/1", tmp_path / "bulk.xml")
        assert caught.value.status == 307
        assert len(server.requests("GET")) == 2  # one each: nothing followed, nothing retried
    assert foreign.seen == [] and not list(tmp_path.iterdir())


def test_every_provider_follows_same_origin_redirects_only(foreign: Scripted) -> None:
    def answer(seen: Seen) -> Answer:
        if seen.path == "/moved":
            return Answer(301, {"Location": "/here"})
        if seen.path == "/away":
            return Answer(302, {"Location": f"{foreign.url}/feed"})
        if seen.path == "/loop":
            return Answer(302, {"Location": "/loop"})
        return Answer(200, body=b"here")

    with Scripted(answer) as server:
        plain = Plain(base_url=server.url, sleep=lambda s: None)
        assert plain.request("GET", "/moved").text == "here"
        with pytest.raises(
            ProviderError,
            match=r"/away was redirected to http://127\.0\.0\.1:\d+/feed: not followed, it leads to another origin",
        ):
            plain.request("GET", "/away")
        with pytest.raises(ProviderError, match=r"not followed, more than 5 redirect\(s\)"):
            plain.request("GET", "/loop")
        with pytest.raises(ProviderError, match="not followed, a POST is not redirected"):
            plain.request("POST", "/moved")
        paths = [s.path for s in server.seen]
        assert paths == ["/moved", "/here", "/away", *["/loop"] * 6, "/moved"]
    assert foreign.seen == []


def test_a_redirect_to_another_port_or_scheme_is_another_origin(foreign: Scripted) -> None:
    for location in (
        foreign.url.replace("127.0.0.1", "localhost"),
        foreign.url.replace("http:", "https:"),
    ):
        redirecting = Scripted(always(302, headers={"Location": f"{location}/x"}))
        with redirecting as server, pytest.raises(ProviderError, match="another origin"):
            Plain(base_url=server.url).request("GET", "/")
    assert foreign.seen == []


# --------------------------------------------------------------------------- retries


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    answers = iter([Answer(429, {"Retry-After": "2"}), Answer(200, body=b"<feed/>")])
    with Scripted(with_token(lambda seen: next(answers))) as server:
        waits: list[float] = []
        got = custodian_at(server.url, waits).download("Batch/Bulk/1", tmp_path / "b.xml")
        assert isinstance(got, espi_client.Downloaded) and got.size == 7
        assert waits == [2.0] and len(server.requests("GET")) == 2


def test_a_retry_after_beyond_patience_is_raised_at_once() -> None:
    with Scripted(with_token(lambda seen: Answer(429, {"Retry-After": "3600"}))) as server:
        waits: list[float] = []
        with pytest.raises(RateLimited) as caught:
            custodian_at(server.url, waits, max_wait=60).download("Batch/Bulk/1", io.BytesIO())
        assert caught.value.retry_after == 3600 and waits == []
        assert len(server.requests("GET")) == 1


def test_a_202_with_retry_after_says_when() -> None:
    with Scripted(with_token(lambda seen: Answer(202, {"Retry-After": "30"}))) as server:
        got = custodian_at(server.url).download("Batch/Bulk/1", io.BytesIO())
        assert got == espi_client.Accepted(f"{server.url}/espi/1_1/resource/Batch/Bulk/1", 30.0)


def test_an_endless_error_body_is_read_only_in_part() -> None:
    def endless(seen: Seen) -> Answer:
        return Answer(
            500,
            {"Content-Type": "text/plain"},
            (b"x" * 65536 for _ in range(10**6)),
            length=65536 * 10**6,
        )

    with Scripted(with_token(endless)) as server:
        with pytest.raises(ProviderError, match="HTTP 500") as caught:
            custodian_at(server.url, retries=1).download("Batch/Bulk/1", io.BytesIO())
        assert len(caught.value.body) == 2000 and len(server.requests("GET")) == 2


# --------------------------------------------------------------------------- streaming


def test_a_large_document_streams_to_disk_in_flat_memory(tmp_path: Path) -> None:
    size = 64 << 20
    chunk = b"<IntervalReading/>".ljust(1 << 16, b" ")

    def big(seen: Seen) -> Answer:
        return Answer(
            200,
            {"Content-Type": "application/atom+xml"},
            (chunk for _ in range(size // len(chunk))),
            length=size,
        )

    writes: list[int] = []

    class Counting(io.RawIOBase):
        def write(self, data: Any) -> int:
            writes.append(len(data))
            return len(data)

    with Scripted(with_token(big)) as server:
        client = custodian_at(server.url)
        tracemalloc.start()
        try:
            got = client.download("Batch/Bulk/1", tmp_path / "big.xml")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert isinstance(got, espi_client.Downloaded) and got.size == size
        assert (tmp_path / "big.xml").stat().st_size == size
        assert peak < 4 << 20, f"{peak:,} bytes held for a {size:,}-byte document"
        client.download("Batch/Bulk/1", Counting())
        assert sum(writes) == size and max(writes) <= espi_client.CHUNK


def test_a_body_that_breaks_off_leaves_no_file(tmp_path: Path) -> None:
    def short(seen: Seen) -> Answer:
        return Answer(200, {}, [b"<feed>" + b" " * 100_000], length=1_000_000)

    broken = pytest.raises(
        Unavailable, match=r"the answer broke off after [\d,]+ bytes: .*IncompleteRead"
    )
    with Scripted(with_token(short)) as server, broken:
        custodian_at(server.url).download("Batch/Bulk/1", tmp_path / "bulk.xml")
    assert not list(tmp_path.iterdir())  # neither bulk.xml nor bulk.xml.partial


def test_a_document_over_the_limit_is_refused(tmp_path: Path) -> None:
    too_large = pytest.raises(ProviderError, match="larger than 100,000 bytes")
    with Scripted(with_token(lambda seen: Answer(200, body=b"x" * 300_000))) as server, too_large:
        custodian_at(server.url).download("Batch/Bulk/1", tmp_path / "b.xml", max_bytes=100_000)
    assert not list(tmp_path.iterdir())


def test_fetch_reads_the_subscription_with_published_min() -> None:
    sample = Path(__file__).resolve().parents[1] / "data" / "PGEUsagePoint.xml"

    def answer(seen: Seen) -> Answer:
        return Answer(200, {"Content-Type": "application/atom+xml"}, sample.read_bytes())

    with Scripted(answer) as server:
        client = custodian_at(server.url)
        credentials = Credentials(account=f"{server.url}/espi/1_1/resource/Batch/Subscription/5",
                                  access_token="customer-token", expires_at=0)  # fmt: skip
        feed = client.fetch(credentials, since=86400)
        assert feed.usage_points
        (seen,) = server.seen
        assert (
            seen.path
            == "/espi/1_1/resource/Batch/Subscription/5?published-min=1970-01-02T00%3A00%3A00Z"
        )
        assert seen.headers["Authorization"] == "Bearer customer-token"


# --------------------------------------------------------------------------- the rate limit


def test_the_pacer_spaces_requests() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(round(s, 6))
        now[0] += s

    pace = Pacer(4.0, sleep=sleep, clock=lambda: now[0])
    for _ in range(4):
        pace()
    now[0] += 10
    pace()
    assert slept == [0.25, 0.25, 0.25]


def test_the_profile_rate_limit_paces_the_client() -> None:
    slept: list[float] = []
    with Scripted(with_token(lambda seen: Answer(200, body=b"<feed/>"))) as server:
        made = espi_client.profile("slow", token_url=f"{server.url}/token", resource_base=f"{server.url}/r",
                                   requests_per_second=1.0)  # fmt: skip
        client = espi_client.Custodian(made)
        assert isinstance(client.throttle, Pacer) and client.throttle.interval == 1.0
        client.throttle.sleep = slept.append  # the waits it would take, not taken,
        client.throttle.clock = lambda: 0.0  # on a clock that stands still
        for _ in range(2):
            client.download("ReadServiceStatus", io.BytesIO())
    assert slept == [1.0, 2.0]  # token, GET, GET: one a second
