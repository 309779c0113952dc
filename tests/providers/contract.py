"""The contract every provider adapter keeps, tested against its fake over HTTP on loopback.

A provider's test class inherits :class:`ProviderContract` and says how to make its fake, the
settings that point the provider at it, how a customer connects (the hooks of its connect
kind), and what its documented errors look like. The contract then checks, for every
provider alike: it is registered and its capabilities match the methods it implements; it is
built from settings (and refuses unknown or missing ones); the connect flow of its kind;
``fetch(credentials, since)`` and ``disconnect(credentials)`` over real HTTP; notifications;
retries, Retry-After, timeouts, a host that does not answer, wrong credentials."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask

import espi
from espi import providers
from espi.codes import MeasurementKind
from espi.errors import AuthError, NotReady, ProviderError, RateLimited, Unavailable
from espi.providers import ConnectKind, Credentials, DataKind, FieldError, Redirect
from espi.providers.base import CONNECT_METHODS, disagreements
from fakes.common import Fault, Served, faults, serve
from tests.scripted import Scripted, always


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetched(client: providers.Provider, credentials: Credentials, since: int | None) -> espi.Feed:
    """``fetch``, asked again while the provider is still gathering (bounded)."""
    for _ in range(60):
        try:
            return client.fetch(credentials, since)
        except NotReady:
            continue
    raise AssertionError("the provider was still gathering after 60 fetches")


class ProviderContract:
    slug: ClassVar[str]
    connect_kind: ClassVar[ConnectKind]
    data: ClassVar[frozenset[DataKind]]
    notifies: ClassVar[bool] = False
    #: the body a rate-limited answer carries, as the provider documents it
    rate_limit_body: ClassVar[Any] = None
    #: the body of a server error, as the provider documents it
    server_error_body: ClassVar[Any] = None
    #: the status the provider answers wrong credentials with
    auth_status: ClassVar[int] = 401

    # ------------------------------------------------------------------ what a test class says

    def make_fake(self) -> Flask:
        raise NotImplementedError

    def settings(self, url: str) -> dict[str, str]:
        """Settings that point the provider at the fake served at ``url``."""
        raise NotImplementedError

    def bad_client(self, url: str) -> providers.Provider:
        raise NotImplementedError

    def connected(self, client: Any, fake: Served) -> Credentials:
        """A customer connected through the provider's own flow: its credentials."""
        raise NotImplementedError

    def since(self) -> int | None:
        """What the contract's fetch asks from (None: the provider's default history)."""
        return None

    def cheap_call(self, client: Any, fake: Served | None) -> Any:
        """One authenticated request (for the error and retry tests)."""
        raise NotImplementedError

    def refused_call(self, fake: Served) -> Any:
        """A request with wrong credentials (by default :meth:`cheap_call` of
        :meth:`bad_client`)."""
        return self.cheap_call(self.bad_client(fake.url), fake)

    # connect hooks, by kind
    def answer_redirect(self, redirect: Redirect, fake: Served) -> dict[str, str]:
        """OAUTH / WIDGET: the customer at the provider's page, agreeing: the query the
        browser brings back to the redirect URI."""
        raise NotImplementedError

    def good_form(self) -> dict[str, str]:
        """CREDENTIALS: a form a customer fills in correctly."""
        raise NotImplementedError

    def bad_forms(self) -> list[tuple[dict[str, str], str]]:
        """CREDENTIALS: refused forms, each with the input the refusal must name."""
        raise NotImplementedError

    def notification(self, credentials: Credentials) -> bytes:
        """A notification body naming the connected account."""
        raise NotImplementedError

    # ------------------------------------------------------------------ fixtures

    def client(self, url: str, **kw: Any) -> Any:
        return providers.get(self.slug).from_settings(self.settings(url), **kw)

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

    # ------------------------------------------------------------------ registered, declared

    def test_registered_with_consistent_capabilities(self) -> None:
        cls = providers.get(self.slug)
        assert cls in providers.registered()
        assert cls.slug == self.slug and cls.title and cls.default_base.startswith("https://")
        caps = cls.capabilities
        assert (caps.connect, caps.data, caps.notifications) == (
            self.connect_kind,
            self.data,
            self.notifies,
        )
        assert disagreements(cls) == []

    def test_what_the_capabilities_exclude_is_not_implemented(self, fake: Served) -> None:
        client = self.client(fake.url)
        calls: dict[str, Any] = {
            "begin_connect": lambda: client.begin_connect("a", "http://127.0.0.1:9/cb"),
            "finish_connect": lambda: client.finish_connect({}, {}),
            "connect_form": lambda: client.connect_form({}),
            "connect": lambda: client.connect({}),
            "notified_accounts": lambda: client.notified_accounts(b"{}"),
        }
        needed = set(CONNECT_METHODS[self.connect_kind])
        if self.notifies:
            needed.add("notified_accounts")
        for name, call in calls.items():
            if name not in needed:
                with pytest.raises(NotImplementedError, match=name):
                    call()

    def test_built_from_settings(self, fake: Served) -> None:
        cls = providers.get(self.slug)
        good = self.settings(fake.url)
        assert cls.missing(good) == []
        assert self.client(fake.url).base_url == fake.url
        assert {s.name for s in cls.settings} >= set(good)
        with pytest.raises(ValueError, match=r"unknown setting\(s\) colour; known: ") as caught:
            cls.from_settings({**good, "colour": "red"})
        assert all(s.name in str(caught.value) for s in cls.settings)
        for s in cls.settings:
            if s.required:
                without = {k: v for k, v in good.items() if k != s.name}
                assert s.name in cls.missing(without)
                with pytest.raises(ValueError, match=rf"setting\(s\) {s.name} required"):
                    cls.from_settings(without)
                assert s.name in cls.missing({**good, s.name: ""})

    # ------------------------------------------------------------------ connecting

    def test_connect_flow_of_its_kind(self, fake: Served) -> None:
        client = self.client(fake.url)
        if self.connect_kind in (ConnectKind.OAUTH, ConnectKind.WIDGET):
            start = client.begin_connect("customer-1", "http://127.0.0.1:9/callback")
            assert start.url.startswith("http") and start.state
            answer = self.answer_redirect(start, fake)
            forged = {**answer, "state": "forged"}
            with pytest.raises(AuthError):
                client.finish_connect(start.state, forged)
            declined = {k: v for k, v in answer.items() if k == "state"} | {"error": "denied"}
            with pytest.raises(AuthError):
                client.finish_connect(start.state, declined)
            credentials = client.finish_connect(start.state, answer)
            assert credentials.access_token and credentials.account == "customer-1"
        elif self.connect_kind is ConnectKind.CREDENTIALS:
            good = self.good_form()
            first = client.connect_form({})
            assert first and {f.name for f in first} <= set(good)
            full = client.connect_form(good)
            assert {f.name for f in full} == set(good)
            assert all(f.value == "" for f in full if f.kind == "password")
            for values, field in self.bad_forms():
                with pytest.raises(FieldError) as caught:
                    client.connect(values)
                assert caught.value.field == field and caught.value.message
            credentials = client.connect(good)
            assert credentials.account
        else:
            assert self.connect_kind is ConnectKind.NONE

    # ------------------------------------------------------------------ data, disconnect

    def test_fetch_is_valid_green_button_and_reads_back(self, fake: Served) -> None:
        client = self.client(fake.url)
        feed = fetched(client, self.connected(client, fake), self.since())
        readings = list(feed.readings())
        assert readings, "the fake's data gives readings"
        if DataKind.BILLS in self.data:
            assert feed.usage_summaries
        if DataKind.PRICES in self.data:
            assert any(rt.kind is MeasurementKind.TARIFF_RATE for rt in feed.reading_types)
        data = espi.dumps(feed)
        assert espi.validate(data) == []
        back = list(espi.iter_readings(data))
        assert [(r.start, r.duration, r.value, r.cost) for r in back] == [
            (r.start, r.duration, r.value, r.cost) for r in readings
        ]

    def test_disconnect_says_what_was_done_and_is_idempotent(self, fake: Served) -> None:
        client = self.client(fake.url)
        credentials = self.connected(client, fake)
        first = client.disconnect(credentials)
        again = client.disconnect(credentials)
        assert isinstance(first, str) and first and isinstance(again, str) and again

    def test_notifications(self, fake: Served) -> None:
        client = self.client(fake.url)
        if not self.notifies:
            return  # NotImplementedError: checked with the other excluded methods
        credentials = self.connected(client, fake)
        assert client.notified_accounts(self.notification(credentials)) == [credentials.account]
        for body in (b"not json", b"[]", b"{}"):
            with pytest.raises(ValueError):
                client.notified_accounts(body)

    # ------------------------------------------------------------------ errors and retries

    def test_wrong_credentials_are_an_auth_error(self, fake: Served) -> None:
        with pytest.raises(AuthError) as caught:
            self.refused_call(fake)
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
            self.cheap_call(client, None)
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


def query_of(location: str) -> dict[str, str]:
    """The query parameters of a redirect's Location."""
    return dict(parse_qsl(urlsplit(location).query))
