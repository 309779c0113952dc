"""The registry and the contract's rules, and a provider that is not one of ours: a dummy meter
service defined here, with its own fake served here, registers itself in this test process and
keeps the same contract the real providers keep (its test class inherits it)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import requests
from flask import Blueprint, Flask, Response, current_app, jsonify, request

import espi
from espi import builder
from espi.providers import (
    REGISTRY,
    Capabilities,
    ConnectKind,
    Credentials,
    DataKind,
    Field,
    FieldError,
    Provider,
    Setting,
    UnknownProvider,
    get,
    register,
    registered,
)
from espi.providers.base import disagreements
from fakes.common import Faults, Served

from .contract import ProviderContract

# --------------------------------------------------------------------------- a dummy provider


class Dummy(Provider):
    """A meter service: a customer gives a meter number; a token comes back; hourly readings."""

    slug = "dummy"
    title = "Dummy meters"
    default_base = "https://dummy.example"
    capabilities = Capabilities(ConnectKind.CREDENTIALS, frozenset({DataKind.INTERVALS}))
    settings = (
        Setting("api_key", required=True, secret=True),
        Setting("base_url", default=default_base),
    )

    def __init__(self, api_key: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"X-Key": self.api_key, **({"Authorization": f"Bearer {token}"} if token else {})}

    def connect_form(self, values: Mapping[str, str]) -> list[Field]:
        return [Field("meter", "Meter number", value=str(values.get("meter") or ""))]

    def connect(self, values: Mapping[str, str]) -> Credentials:
        meter = str(values.get("meter") or "").strip()
        if not meter.isdigit():
            raise FieldError("meter", "A meter number is digits.", provider=self.slug)
        answer = self.json("POST", "/meters", json={"meter": meter}, idempotent=False)
        return Credentials(account=meter, access_token=str(answer["token"]))

    def fetch(self, credentials: Credentials, since: int | None = None) -> espi.Feed:
        rows = self.json("GET", f"/meters/{credentials.account}/readings", token=credentials.access_token,
                         params={"since": since or 0})  # fmt: skip
        up = builder.usage_point(title=f"Dummy meter {credentials.account}")
        rt = builder.reading_type(interval_length=3600)
        builder.meter_reading(up, rt, [(r["start"], 3600, r["wh"]) for r in rows])
        return builder.feed(up)

    def disconnect(self, credentials: Credentials) -> str:
        resp = self.request(
            "DELETE", f"/meters/{credentials.account}", token=credentials.access_token
        )
        return (
            "the token was revoked" if resp.json()["revoked"] else "the token was already revoked"
        )

    def meters(self, token: str) -> Any:
        return self.json("GET", "/meters", token=token)


dummy = Blueprint("dummy", __name__)


def tokens() -> dict[str, str]:
    found: dict[str, str] = current_app.extensions["dummy"]
    return found


@dummy.before_app_request
def checked() -> Any:
    if request.headers.get("X-Key") != "k":
        return Response('{"error": "bad key"}', 401, mimetype="application/json")
    return None


@dummy.post("/meters")
def add_meter() -> Response:
    token = f"t{len(tokens())}"
    tokens()[token] = str((request.get_json() or {})["meter"])
    return jsonify({"token": token})


@dummy.get("/meters")
def list_meters() -> Response:
    return jsonify(sorted(set(tokens().values())))


@dummy.get("/meters/<meter>/readings")
def readings(meter: str) -> Any:
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if tokens().get(token) != meter:
        return Response('{"error": "bad token"}', 401, mimetype="application/json")
    since = int(request.args.get("since", 0))
    return jsonify(
        [
            {"start": t, "wh": 400 + t % 7}
            for t in range(1767225600, 1767225600 + 86400, 3600)
            if t >= since
        ]
    )


@dummy.delete("/meters/<meter>")
def revoke(meter: str) -> Response:
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    return jsonify({"revoked": tokens().pop(token, None) is not None})


def dummy_app() -> Flask:
    app = Flask(__name__)
    app.extensions["dummy"] = {}
    Faults().install(app)
    app.register_blueprint(dummy)
    return app


@pytest.fixture
def registered_dummy() -> Iterator[type[Dummy]]:
    register(Dummy)
    yield Dummy
    del REGISTRY["dummy"]


class TestDummy(ProviderContract):
    """The contract, for a provider registered by a test."""

    slug = "dummy"
    connect_kind = ConnectKind.CREDENTIALS
    data = frozenset({DataKind.INTERVALS})

    @pytest.fixture(autouse=True)
    def _registered(self, registered_dummy: type[Dummy]) -> None:
        pass

    def make_fake(self) -> Flask:
        return dummy_app()

    def settings(self, url: str) -> dict[str, str]:
        return {"api_key": "k", "base_url": url}

    def bad_client(self, url: str) -> Dummy:
        return Dummy("wrong", base_url=url)

    def good_form(self) -> dict[str, str]:
        return {"meter": "42"}

    def bad_forms(self) -> list[tuple[dict[str, str], str]]:
        return [({"meter": "forty-two"}, "meter")]

    def connected(self, client: Any, fake: Served) -> Credentials:
        return client.connect(self.good_form())

    def cheap_call(self, client: Any, fake: Served | None) -> Any:
        return client.meters("t0")


# --------------------------------------------------------------------------- the registry's rules


def test_every_provider_is_registered_and_listed_by_slug() -> None:
    slugs = [cls.slug for cls in registered()]
    assert slugs == sorted(REGISTRY) and {"griddy", "pelm", "wattshift", "wattzon"} <= set(slugs)
    assert all(disagreements(cls) == [] for cls in registered())


def test_an_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(
        UnknownProvider, match=f"no provider 'nope'; known: {', '.join(sorted(REGISTRY))}"
    ):
        get("nope")
    assert issubclass(UnknownProvider, LookupError)


def test_a_registered_provider_is_driven_by_the_registry_alone(
    registered_dummy: type[Dummy],
) -> None:
    """What an application does with a provider it does not know by name."""
    from fakes.common import serve

    served = serve(dummy_app())
    try:
        cls = get("dummy")
        assert cls in registered() and cls.missing({}) == ["api_key"]
        provider = cls.from_settings({"api_key": "k", "base_url": served.url})
        assert cls.capabilities.connect is ConnectKind.CREDENTIALS
        form = provider.connect_form({})
        credentials = provider.connect({f.name: "7" for f in form})
        feed = provider.fetch(credentials)
        assert len(list(feed.readings())) == 24 and espi.validate(espi.dumps(feed)) == []
        assert provider.disconnect(credentials) == "the token was revoked"
        with pytest.raises(NotImplementedError, match="connects by credentials"):
            provider.begin_connect("a", "http://127.0.0.1:9/cb")
        answer = requests.get(f"{served.url}/meters", headers={"X-Key": "k"}, timeout=10)
        assert answer.json() == []
    finally:
        served.stop()


def test_register_refuses_a_taken_slug() -> None:
    class Another(Dummy):
        slug = "pelm"

    with pytest.raises(ValueError, match="slug 'pelm' is taken by Pelm"):
        register(Another)
    assert get("pelm").__name__ == "Pelm"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"capabilities": Capabilities(ConnectKind.WIDGET, frozenset())},
            "has connect_form but connects by widget",
        ),
        (
            {
                "capabilities": Capabilities(
                    ConnectKind.CREDENTIALS, frozenset(), notifications=True
                )
            },
            "notifications=True",
        ),
        ({"fetch": Provider.fetch}, "no fetch"),
        (
            {"begin_connect": lambda self, account, redirect_uri: None},
            "has begin_connect but connects by credentials",
        ),
        ({"settings": (Setting("a"), Setting("a"))}, "settings named twice"),
        ({"capabilities": None}, "no Capabilities"),
    ],
)
def test_register_refuses_capabilities_the_methods_contradict(
    change: dict[str, Any], problem: str
) -> None:
    broken = type("Broken", (Dummy,), {"slug": "broken", **change})
    with pytest.raises(TypeError, match=problem):
        register(broken)
    assert "broken" not in REGISTRY


def test_from_settings_fills_defaults_and_passes_transport_options() -> None:
    waits: list[float] = []
    provider = Dummy.from_settings({"api_key": "k", "base_url": ""}, sleep=waits.append, retries=1)
    assert provider.base_url == Dummy.default_base and provider.retries == 1
    assert provider.sleep == waits.append
