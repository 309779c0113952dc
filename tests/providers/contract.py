"""The contract every provider adapter keeps, tested against its fake over HTTP on loopback.

A provider's test class inherits :class:`ProviderContract` and says how to make its fake and
its client, how to fetch, and what its documented errors look like."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

import espi
from espi import providers
from espi.errors import AuthError, ProviderError, RateLimited, Unavailable
from fakes.common import Fault, Served, faults, serve
from tests.scripted import Scripted, always


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProviderContract:
    slug: ClassVar[str]
    #: the body a rate-limited answer carries, as the provider documents it
    rate_limit_body: ClassVar[Any] = None
    #: the body of a server error, as the provider documents it
    server_error_body: ClassVar[Any] = None
    #: the status the provider answers wrong credentials with
    auth_status: ClassVar[int] = 401

    def make_fake(self) -> Any:
        raise NotImplementedError

    def client(self, url: str, **kw: Any) -> providers.Provider:
        raise NotImplementedError

    def bad_client(self, url: str) -> providers.Provider:
        raise NotImplementedError

    def fetch(self, client: Any, fake: Served) -> espi.Feed:
        raise NotImplementedError

    def cheap_call(self, client: Any, fake: Served) -> Any:
        """One authenticated request (for the error and retry tests)."""
        raise NotImplementedError

    @pytest.fixture
    def fake(self) -> Iterator[Served]:
        served = serve(self.make_fake())
        yield served
        served.stop()

    @pytest.fixture
    def waits(self) -> list[float]:
        return []

    def quick(self, url: str, waits: list[float], **kw: Any) -> Any:
        return self.client(url, sleep=waits.append, **kw)

    # ------------------------------------------------------------------ the contract

    def test_registered(self) -> None:
        cls = providers.get(self.slug)
        assert cls.slug == self.slug and cls.title and cls.default_base.startswith("https://")

    def test_fetch_is_valid_green_button_and_reads_back(self, fake: Served) -> None:
        feed = self.fetch(self.client(fake.url), fake)
        readings = list(feed.readings())
        assert readings, "the fake's data gives readings"
        data = espi.dumps(feed)
        assert espi.validate(data) == []
        back = list(espi.iter_readings(data))
        assert [(r.start, r.duration, r.value, r.cost) for r in back] == [
            (r.start, r.duration, r.value, r.cost) for r in readings
        ]

    def test_wrong_credentials_are_an_auth_error(self, fake: Served) -> None:
        with pytest.raises(AuthError) as caught:
            self.cheap_call(self.bad_client(fake.url), fake)
        assert caught.value.status == self.auth_status and caught.value.body
        assert caught.value.provider == self.slug

    def test_server_errors_are_retried_with_backoff(self, fake: Served, waits: list[float]) -> None:
        client = self.quick(fake.url, waits)
        self.cheap_call(client, fake)  # warm up (sign-ins and the like)
        faults(fake.app).add(Fault(503), Fault(500, self.server_error_body))
        self.cheap_call(client, fake)
        assert waits == [0.5, 1.0]

    def test_persistent_server_errors_are_raised_with_status_and_body(
        self, fake: Served, waits: list[float]
    ) -> None:
        client = self.quick(fake.url, waits)
        self.cheap_call(client, fake)
        faults(fake.app).add(*[Fault(500, self.server_error_body)] * 4)
        with pytest.raises(ProviderError) as caught:
            self.cheap_call(client, fake)
        assert caught.value.status == 500 and len(waits) == 3
        if self.server_error_body is not None:
            assert caught.value.code and caught.value.body

    def test_rate_limit_honours_retry_after(self, fake: Served, waits: list[float]) -> None:
        client = self.quick(fake.url, waits)
        self.cheap_call(client, fake)
        faults(fake.app).add(Fault(429, self.rate_limit_body, {"Retry-After": "2"}))
        self.cheap_call(client, fake)
        assert waits == [2.0]

    def test_rate_limit_beyond_patience_is_raised(self, fake: Served, waits: list[float]) -> None:
        client = self.quick(fake.url, waits, max_wait=5)
        self.cheap_call(client, fake)
        faults(fake.app).add(Fault(429, self.rate_limit_body, {"Retry-After": "3600"}))
        with pytest.raises(RateLimited) as caught:
            self.cheap_call(client, fake)
        assert caught.value.retry_after == 3600 and waits == []

    def test_slow_answer_is_unavailable(self, fake: Served, waits: list[float]) -> None:
        client = self.quick(fake.url, waits, timeout=0.3, retries=0)
        self.cheap_call(self.quick(fake.url, waits), fake)
        faults(fake.app).add(Fault(0, delay=1.0))
        with pytest.raises(Unavailable, match=r"within 0\.3 s"):
            self.cheap_call(client, fake)

    def test_host_that_does_not_answer_is_unavailable(self, waits: list[float]) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        client = self.quick(url, waits)
        with pytest.raises(Unavailable, match=r"no answer from http://127\.0\.0\.1"):
            self.cheap_call(client, None)  # type: ignore[arg-type]
        assert len(waits) == 3  # a refused connection is tried again

    def test_redirect_to_another_origin_is_not_followed(
        self, fake: Served, waits: list[float]
    ) -> None:
        client = self.quick(fake.url, waits)
        self.cheap_call(client, fake)
        with Scripted(always(200, b"a foreign feed")) as foreign:
            faults(fake.app).add(Fault(302, headers={"Location": f"{foreign.url}/feed"}))
            with pytest.raises(ProviderError, match=r"redirected to http://127\.0\.0\.1:\d+/feed"):
                self.cheap_call(client, fake)
            assert foreign.seen == []
