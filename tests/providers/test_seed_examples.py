"""Every example body of the seed documents (``seed_examples/*.json``, extracted once with the seed
file, section and lines named) replayed both ways:

- through the fake: the seed's request, sent over HTTP (placeholders such as ``{ACCOUNT_ID}`` or
  ``0c3...d64`` replaced by the fake's live values, each replacement named below), is answered
  with the seed's response shape (every key of the seed's example, with the same JSON type);
- through the adapter: a seed server answers the adapter's own request with the seed's exact
  response body, and the adapter maps it (and asks with the seed's request keys).

An example that is not replayed says why in its fixture (``not_replayed``); the first test makes
sure nothing is left without one or the other."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask, Response, jsonify, request

import espi
from espi.codes import ItemKind, ServiceKind, UnitSymbolKind
from espi.providers import Credentials
from espi.providers import griddy as G
from espi.providers import pelm as P
from espi.providers import wattshift as WS
from espi.providers import wattzon as W
from fakes import griddy as fake_griddy
from fakes import pelm as fake_pelm
from fakes import wattshift as fake_ws
from fakes import wattzon as fake_wz
from fakes.common import Served, serve
from tests.certs import serve_tls

from .test_pelm import CLIENT, SECRET, code_of, submit_connect

HERE = Path(__file__).parent / "seed_examples"
EXAMPLES: dict[str, dict[str, Any]] = {
    e["id"]: e
    for name in ("pelm", "wattshift", "wattzon", "griddy")
    for e in json.loads((HERE / f"{name}.json").read_text())["examples"]
}
#: keys the seeds describe as free-form ("many strings of data"): their contents are not compared
FREE_FORM = {"meta_data", "variables", "invoice_amounts"}


def seed_request(ident: str) -> Any:
    return EXAMPLES[ident]["request"]["json"]


def seed_form(ident: str) -> dict[str, str]:
    """A request the seed shows as a curl form (``-F``, ``--data``)."""
    form: dict[str, str] = EXAMPLES[ident]["request"]["form"]
    return form


def seed_response(ident: str, n: int = 0) -> Any:
    return EXAMPLES[ident]["responses"][n]["json"]


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def shape_problems(seed: Any, answer: Any, typos: dict[str, str], where: str = "") -> list[str]:
    """How ``answer`` lacks the shape of the seed's example: a key missing, or a value of
    another JSON type (null matches anything; lists compare their first items)."""
    if seed is None or answer is None:
        return []
    if isinstance(seed, dict):
        if not isinstance(answer, dict):
            return [f"{where or 'the answer'}: an object in the seed, {kind(answer)} here"]
        out = []
        for key, value in seed.items():
            name = typos.get(key, key)
            if name not in answer:
                out.append(f"{where}{name}: missing")
            elif name not in FREE_FORM:
                out += shape_problems(value, answer[name], typos, f"{where}{name}.")
        return out
    if isinstance(seed, list):
        if not isinstance(answer, list):
            return [f"{where or 'the answer'}: a list in the seed, {kind(answer)} here"]
        return shape_problems(seed[0], answer[0], typos, f"{where}[0].") if seed and answer else []
    if kind(seed) != kind(answer):
        return [f"{where.rstrip('.')}: {kind(seed)} in the seed, {kind(answer)} here"]
    return []


# --------------------------------------------------------------------------- the seed server


@dataclass
class SeedServer:
    """Answers the adapter's requests with the seed's bodies; keeps what was asked."""

    url: str = ""
    answers: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    seen: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, method: str, path: str, body: Any, status: int = 200) -> None:
        self.answers[(method, path.rstrip("/"))] = (status, body)

    def asked(self, path: str) -> dict[str, Any]:
        return next(s for s in reversed(self.seen) if s["path"] == path.rstrip("/"))

    def app(self) -> Flask:
        app = Flask("seed")

        @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "DELETE"])
        @app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE"])
        def replay(path: str) -> Response:
            key = (request.method, "/" + path.rstrip("/"))
            self.seen.append({"path": key[1], "args": dict(request.args), "form": dict(request.form),
                              "json": request.get_json(silent=True)})  # fmt: skip
            if key not in self.answers:
                resp = jsonify({"error": f"{key} is not in the seed"})
                resp.status_code = 404
                return resp
            status, body = self.answers[key]
            resp = jsonify(body)
            resp.status_code = status
            return resp

        return app


@pytest.fixture
def seed() -> Iterator[SeedServer]:
    server = SeedServer()
    served = serve(server.app())
    server.url = served.url
    yield server
    served.stop()


# --------------------------------------------------------------------------- live fakes


@dataclass
class Live:
    served: Served
    session: requests.Session
    values: dict[str, Any]

    def send(self, method: str, path: str, **kw: Any) -> requests.Response:
        """A request (with the TLS settings per request: the environment cannot override)."""
        tls = self.values.get("tls", {})
        return self.session.request(method, self.served.url + path, timeout=30, **tls, **kw)

    def call(self, method: str, path: str, **kw: Any) -> Any:
        answer = self.send(method, path, **kw)
        assert answer.status_code < 400, (path, answer.status_code, answer.text[:300])
        return (
            answer.json()
            if answer.headers.get("Content-Type", "").startswith("application/json")
            else None
        )


@pytest.fixture
def live_pelm() -> Iterator[Live]:
    served = serve(fake_pelm.create_app(CLIENT, SECRET))
    client = P.Pelm(CLIENT, SECRET, base_url=served.url)
    session = requests.Session()
    session.headers.update(client.headers())
    live = Live(served, session, {"client": client})
    live.values["token"] = client.exchange(code_of(submit_connect(client, served.url)))[
        "access_token"
    ]
    live.values["account"] = client.accounts(live.values["token"])[0]["id"]
    yield live
    served.stop()


@pytest.fixture
def live_wattshift() -> Iterator[Live]:
    served = serve(fake_ws.create_app("ws-key", legacy=True))  # legacy: the seed's spellings
    session = requests.Session()
    session.headers["x-ws-api-key"] = "ws-key"
    yield Live(served, session, {})
    served.stop()


@pytest.fixture
def live_wattzon(certs: Path) -> Iterator[Live]:
    served = serve_tls(fake_wz.create_app(), certs)
    tls = {
        "cert": (str(certs / "client.pem"), str(certs / "client.key")),
        "verify": str(certs / "ca.pem"),
    }
    client = W.WattzOn(tls["cert"], base_url=served.url, verify=tls["verify"])
    yield Live(served, requests.Session(), {"client": client, "tls": tls})
    served.stop()


@pytest.fixture
def live_griddy() -> Iterator[Live]:
    served = serve(fake_griddy.create_app())
    client = G.Griddy(base_url=served.url)
    member = client.sign_in("jane.doe@example.com", "Password123")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {member.access_token}"
    person = fake_griddy.state(served.app).members[member.account]
    live = Live(served, session, {"client": client, "member": member, "person": person})
    yield live
    served.stop()


# --------------------------------------------------------------------------- replays


@dataclass(frozen=True)
class Replay:
    #: sends the seed's request to the live fake; the answers, in the order of the seed's
    fake: Callable[[Live], list[Any]] | None
    #: the adapter against the seed server
    adapter: Callable[[SeedServer], None] | None
    #: why one side is not replayed
    why: str = ""


# ---- Pelm


def pelm_connect_token(live: Live) -> list[Any]:
    form = {
        "user_id": "seed-user",
        "utility_id": "1",
    }  # {YOUR_USER_ID}, {UTILITY_ID}: sandbox values
    assert set(form) == set(seed_form("pelm/connect-token"))
    assert live.call("POST", "/auth/connect-token", data=form)["connect_token"]
    return []


def pelm_connect_token_adapter(seed: SeedServer) -> None:
    seed.answer("POST", "/auth/connect-token", {"connect_token": "ct", "expires_in": 1800})
    assert P.Pelm("c", "s", base_url=seed.url).connect_token("u-1", utility_id="1") == "ct"
    assert set(seed.asked("/auth/connect-token")["form"]) == set(seed_form("pelm/connect-token"))


def pelm_token(live: Live) -> list[Any]:
    code = code_of(submit_connect(live.values["client"], live.served.url))  # {AUTHORIZATION_CODE}
    return [live.call("POST", "/auth/token", data={"code": code, "grant_type": "code"})]


def pelm_token_adapter(seed: SeedServer) -> None:
    seed.answer("POST", "/auth/token", seed_response("pelm/token"))
    tokens = P.Pelm("c", "s", base_url=seed.url).exchange("a-code")
    assert tokens["access_token"] == "57f20230-4ee7-11ec-9b0c-acde48001122"
    assert seed.asked("/auth/token")["form"] == {"code": "a-code", "grant_type": "code"}


def pelm_accounts(live: Live) -> list[Any]:
    fake_pelm.state(live.served.app).seed_shapes = True
    return [
        live.call("GET", "/accounts", headers={"Authorization": f"Bearer {live.values['token']}"})
    ]


def pelm_intervals(live: Live) -> list[Any]:
    params = {
        "account_id": live.values["account"],
        "start_date": 1646996400,
        "end_date": 1647003600,
    }
    return [
        live.call(
            "GET",
            "/intervals",
            params=params,
            headers={"Authorization": f"Bearer {live.values['token']}"},
        )
    ]


def pelm_bills(live: Live) -> list[Any]:
    fake_pelm.state(live.served.app).seed_shapes = True
    path = f"/users/{live.values['account']}/bills"  # {ACCOUNT_ID}: the fake's account
    answer = live.call("GET", path, headers={"Authorization": f"Bearer {live.values['token']}"})
    return [{"577850911877": next(iter(answer.values()))}]  # keyed by bill id: compare a bill


def pelm_feed_adapter(seed: SeedServer) -> None:
    """The seed's accounts, intervals and bills, fetched and mapped as one Feed."""
    accounts = seed_response("pelm/accounts")
    seed.answer("GET", "/accounts", accounts)
    seed.answer("GET", "/intervals", seed_response("pelm/intervals"))
    for account in accounts:
        seed.answer("GET", f"/users/{account['id']}/bills", seed_response("pelm/bills"))
    feed = P.Pelm("c", "s", base_url=seed.url).fetch(
        Credentials(access_token="t"), 1646996400, end=1647003600
    )
    assert seed.asked("/intervals")["args"] == {"account_id": accounts[-1]["id"], "type": "ELECTRIC",
                                                "start_date": "1646996400", "end_date": "1647003600"}  # fmt: skip
    up = feed.usage_points[0]
    usage, ghg = up.meter_readings
    assert [r.value for b in usage.interval_blocks for r in b.readings] == [7526, 7536]
    assert (
        usage.reading_type.uom is UnitSymbolKind.WH
        and usage.reading_type.power_of_ten_multiplier == -1
    )
    assert [r.value for b in ghg.interval_blocks for r in b.readings] == [2925, 2325]  # grams
    (bill,) = (
        up.usage_summaries
    )  # "Wed, 15 Dec 2021 08:00:00 GMT" to "Thu, 13 Jan 2022 08:00:00 GMT"
    assert (bill.billing_period.start, bill.billing_period.duration) == (1639555200, 29 * 86400)
    assert espi.validate(espi.dumps(feed)) == []


# ---- WattShift


def wattshift_session_token(live: Live) -> list[Any]:
    return [live.call("POST", "/v1/onboarding/session-token/generate")]


def wattshift_session_token_adapter(seed: SeedServer) -> None:
    seed.answer(
        "POST", "/v1/onboarding/session-token/generate", seed_response("wattshift/session-token")
    )
    assert WS.WattShift("k", base_url=seed.url).generate_session_token() == "your_session_token"


def wattshift_utility_get(live: Live) -> list[Any]:
    return [live.call("POST", "/v1/utility/get", json=seed_request("wattshift/utility-get"))]


def wattshift_utility_get_adapter(seed: SeedServer) -> None:
    seed.answer("POST", "/v1/utility/get", seed_response("wattshift/utility-get"))
    (utility,) = WS.WattShift("k", base_url=seed.url).utilities("95313")
    assert seed.asked("/v1/utility/get")["json"] == seed_request("wattshift/utility-get")
    assert (utility.id, utility.name) == ("14328", "Pacific Gas & Electric")
    assert [p.name for p in utility.rate_plans] == ["TOU-D", "TOU-C", "E-6"]


def wattshift_homes_create(live: Live) -> list[Any]:
    return [live.call("POST", "/v1/homes/create", json=seed_request("wattshift/homes-create"))]


def wattshift_homes_create_adapter(seed: SeedServer) -> None:
    seed.answer("POST", "/v1/homes/create", seed_response("wattshift/homes-create"))
    sent = seed_request("wattshift/homes-create")
    optional = {
        k: v for k, v in sent.items() if k not in ("name", "zipcode", "utilityId", "ratePlanId")
    }
    home = WS.WattShift("k", base_url=seed.url).create_home(
        sent["name"], sent["zipcode"], sent["utilityId"], sent["ratePlanId"], **optional
    )
    assert home == {"id": "home_id"} and seed.asked("/v1/homes/create")["json"] == sent


def wattshift_solar_create(live: Live) -> list[Any]:
    home = live.call("POST", "/v1/homes/create", json=seed_request("wattshift/homes-create"))["id"]
    body = {**seed_request("wattshift/solar-create"), "homeId": home}  # "home_id": the home made
    return [live.call("POST", "/v1/homes/solar/create", json=body)]


def wattshift_solar_create_adapter(seed: SeedServer) -> None:
    seed.answer("POST", "/v1/homes/solar/create", seed_response("wattshift/solar-create"))
    assert WS.WattShift("k", base_url=seed.url).create_solar("home_id", 5) == "home_id"
    assert seed.asked("/v1/homes/solar/create")["json"] == seed_request("wattshift/solar-create")


# ---- WattzOn


LINK = "/link/4.0"


def wattzon_profile(live: Live, username: str = "customer") -> int:
    """Profile 516 (the seed's), as the Getting Started section makes it."""
    pid = int(
        live.call("POST", f"{LINK}/profiles/", json=seed_request("wattzon/create-profile"))["id"]
    )
    live.values["client"].set_credentials(pid, username, "pw")
    return pid


def encrypted(live: Live, value: str) -> str:
    """A value under the fake's transmission key (the seed's is "[bytes omitted]")."""
    client: W.WattzOn = live.values["client"]
    return client.transmission_key(fresh=True).encrypt(value)


def wattzon_create_profile(live: Live) -> list[Any]:
    answer = live.call("POST", f"{LINK}/profiles/", json=seed_request("wattzon/create-profile"))
    assert answer["id"] == 516  # the fake numbers profiles as the seed's example does
    return [answer]


def wattzon_add_sensitive(live: Live, ident: str = "wattzon/add-sensitive") -> list[Any]:
    pid = int(
        live.call("POST", f"{LINK}/profiles/", json=seed_request("wattzon/create-profile"))["id"]
    )
    body = {**seed_request(ident), "value": encrypted(live, "customer")}
    answer = live.send("POST", f"{LINK}/profiles/{pid}/sensitive/", json=body)
    assert answer.status_code == 201  # the seed: "201 (Success/Created)"
    live.values["pid"] = pid
    return [answer.json()]


def wattzon_add_sensitive_curl(live: Live) -> list[Any]:
    wattzon_add_sensitive(live, "wattzon/add-sensitive-curl")
    return []  # a request alone


def wattzon_change_sensitive(live: Live) -> list[Any]:
    wattzon_add_sensitive(live, "wattzon/change-sensitive-curl")
    body = {**seed_request("wattzon/change-sensitive-curl"), "value": encrypted(live, "someone")}
    live.call("PUT", f"{LINK}/profiles/{live.values['pid']}/sensitive", json=body)
    return []


def wattzon_echo_curl(live: Live) -> list[Any]:
    assert live.call("POST", f"{LINK}/echo/", json=seed_request("wattzon/echo-curl")) == {
        "string": "30"
    }
    return []


def wattzon_start_job_curl(live: Live) -> list[Any]:
    wattzon_start_job(live, "wattzon/start-job-curl")
    return []


def wattzon_start_job(live: Live, ident: str = "wattzon/start-job") -> list[Any]:
    pid = wattzon_profile(live)
    answer = live.call("POST", f"{LINK}/jobs/", json={**seed_request(ident), "profile_id": pid})
    live.values["job"] = answer["job_id"]
    return [answer]


def wattzon_job_status(live: Live) -> list[Any]:
    job = wattzon_start_job(live)[0]["job_id"]
    live.values["client"].wait(job, poll=0)
    return [live.call("GET", f"{LINK}/jobs/{job}/")]


def wattzon_bills(live: Live) -> list[Any]:
    wattzon_job_status(live)
    records = live.call("GET", f"{LINK}/data/bills/516/")
    # the seed's record is a gas bill; profile 516 is at 3150 (electric only): the same fields
    return [[next(r for r in records if r["type"] == "electricity")]]


def wattzon_echo(live: Live) -> list[Any]:
    assert live.call("POST", f"{LINK}/echo/", json=seed_request("wattzon/echo")) == {
        "string": "value"
    }
    return [live.call("GET", f"{LINK}/echo", params=seed_request("wattzon/echo"))]


def wattzon_request_only(
    method: str, path: str, ident: str, **replace: Any
) -> Callable[[Live], list[Any]]:
    def send(live: Live) -> list[Any]:
        pid = wattzon_profile(live)  # 268 in the seed: the profile made here
        body = {
            **seed_request(ident),
            **{k: (pid if v == "pid" else v) for k, v in replace.items()},
        }
        live.call(method, path.format(pid=pid), json=body)
        return []

    return send


def wattzon_delete_tag(live: Live) -> list[Any]:
    pid = wattzon_profile(live)
    live.call("POST", f"{LINK}/profiles/{pid}/tags", json=seed_request("wattzon/add-tag-curl"))
    live.call("DELETE", f"{LINK}/profiles/{pid}/tags", json=seed_request("wattzon/delete-tag-curl"))
    return []


def wattzon_notification(live: Live) -> list[Any]:
    pid = wattzon_profile(live)
    client: W.WattzOn = live.values["client"]
    client.add_tag(pid, "example")
    client.wait(client.start_job(pid, mode="bill"), poll=0)  # notify: the default
    return [fake_wz.state(live.served.app).notifications[-1]]


def wattzon_adapter(seed: SeedServer) -> None:
    """The Getting Started section, through the adapter against the seed's answers."""
    wz = W.WattzOn(base_url=seed.url)
    seed.answer("POST", f"{LINK}/profiles", seed_response("wattzon/create-profile"))
    assert (
        wz.create_profile(3150, zipcode="00007", label="your label") == 516
    )  # "id", not profile_id
    assert seed.asked(f"{LINK}/profiles")["json"] == seed_request("wattzon/create-profile")
    seed.answer(
        "GET",
        f"{LINK}/jobs/3b7471eb-7e35-4a45-b081-e9cfa9d71e75",
        seed_response("wattzon/job-status"),
    )
    status = wz.job("3b7471eb-7e35-4a45-b081-e9cfa9d71e75")
    assert status.finished and status.ok and status.state == "success"
    seed.answer("POST", f"{LINK}/jobs", seed_response("wattzon/start-job"))
    assert wz.start_job(516) == "3b7471eb-7e35-4a45-b081-e9cfa9d71e75"
    asked = seed.asked(f"{LINK}/jobs")["json"]
    assert {k: asked[k] for k in seed_request("wattzon/start-job")} == seed_request(
        "wattzon/start-job"
    )
    seed.answer("GET", f"{LINK}/echo", seed_response("wattzon/echo"))
    assert wz.echo("value") == "value"


def wattzon_key_adapter(seed: SeedServer) -> None:
    seed.answer("GET", f"{LINK}/profiles/keys", seed_response("wattzon/transmission-key"))
    key = W.WattzOn(base_url=seed.url).transmission_key()
    assert key.expires == 1476901022 and "[bytes omitted]" in key.public_key


def wattzon_sensitive_adapter(seed: SeedServer) -> None:
    """The seed's key is elided ("[bytes omitted]"): a real one, then the seed's answer."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    seed.answer(
        "GET",
        f"{LINK}/profiles/keys",
        {"expires": int(time.time()) + 900, "public_key": pem.decode()},
    )
    seed.answer(
        "POST", f"{LINK}/profiles/516/sensitive", seed_response("wattzon/add-sensitive"), 201
    )
    W.WattzOn(base_url=seed.url).set_sensitive(516, "username", "customer")
    sent = seed.asked(f"{LINK}/profiles/516/sensitive")["json"]
    assert set(sent) == set(seed_request("wattzon/add-sensitive")) and sent["field"] == "username"


def wattzon_bills_adapter(seed: SeedServer) -> None:
    seed.answer("GET", f"{LINK}/data/bills/516", seed_response("wattzon/bills"))
    seed.answer("GET", f"{LINK}/data/intervals/516", {"error": "No intervals found"}, 404)
    feed = W.WattzOn(base_url=seed.url).fetch(Credentials(account="516"))
    (up,) = feed.usage_points
    (bill,) = up.usage_summaries
    assert up.kind is ServiceKind.GAS and bill.bill_last_period == 2125000
    used = bill.overall_consumption_last_period
    assert (used.uom, used.value, int(used.power_of_ten_multiplier)) == (
        UnitSymbolKind.THERM,
        1372,
        -2,
    )
    assert bill.billing_period.duration == 31 * 86400  # "2016-10-31T23:59:59" counts to midnight
    assert espi.validate(espi.dumps(feed)) == []


def wattzon_notification_adapter(seed: SeedServer) -> None:
    body = json.dumps(seed_response("wattzon/sqs-notification")).encode()
    assert W.WattzOn(base_url=seed.url).notified_accounts(body) == ["121"]
    note = W.notification(body)
    assert (note.job_id, note.ok, note.mode, note.new_records) == (
        "62f1c29e-aca8-40b8-aa9f-eb436539e3fe",
        True,
        "bill",
        1,
    )


# ---- Griddy


API = "/api/v1"


def griddy_errors(live: Live) -> list[Any]:
    bad = live.send("POST", f"{API}/users/signin", json={"email": "x", "password": "y"})
    missing = live.send("POST", f"{API}/analytics/history", json={"meterID": "0"})
    assert bad.status_code == missing.status_code == 400
    return [bad.json(), missing.json()]


def griddy_errors_adapter(seed: SeedServer) -> None:
    griddy = G.Griddy(base_url=seed.url, retries=0)
    seed.answer("POST", f"{API}/users/signin", seed_response("griddy/errors", 0), 400)
    seed.answer("POST", f"{API}/analytics/history", seed_response("griddy/errors", 1), 400)
    with pytest.raises(espi.ProviderError) as caught:
        griddy.sign_in("a@b.c", "p")
    assert (caught.value.code, caught.value.message) == ("InvalidFields", "invalid field(s): email")
    with pytest.raises(espi.ProviderError) as caught:
        griddy.history(Credentials(account="1", access_token="t"), "35001")
    assert (caught.value.code, caught.value.message) == ("MissingItemType", "no such meter")


def griddy_post(ident: str, **replace: Any) -> Callable[[Live], list[Any]]:
    """The seed's request with placeholders replaced: values naming what to put in."""

    def send(live: Live) -> list[Any]:
        person: fake_griddy.Member = live.values["person"]
        live_values = {"member": person.member_id, "user": person.user_id, "meter": person.meters[0]["ID"],
                       "esi": person.meters[0]["meterID"]}  # fmt: skip
        body = {**seed_request(ident), **{k: live_values.get(v, v) for k, v in replace.items()}}
        return [live.call("POST", EXAMPLES[ident]["path"], json=body)]

    return send


def griddy_refresh(live: Live) -> list[Any]:
    member: Credentials = live.values["member"]
    return [live.call("POST", f"{API}/users/token/refresh", json={"token": member.refresh_token})]


def griddy_signout(live: Live) -> list[Any]:
    member: Credentials = live.values["member"]
    return [live.call("POST", f"{API}/users/signout", json={"refresh_token": member.refresh_token})]


def griddy_get_meter(live: Live) -> list[Any]:
    admin = live.values["client"].sign_in("admin@example.com", "AdminPassword1")
    live.session.headers["Authorization"] = (
        f"Bearer {admin.access_token}"  # "requires an admin access token"
    )
    return griddy_post("griddy/meter-get-meter", meterID="esi", memberID="member", ID="meter")(live)


def griddy_seed_client(seed: SeedServer, path: str, ident: str) -> G.Griddy:
    seed.answer("POST", f"{API}/{path}", seed_response(ident))
    return G.Griddy(base_url=seed.url)


MEMBER = Credentials(account="12345", access_token="t", refresh_token="r")


def griddy_signin_adapter(seed: SeedServer) -> None:
    griddy = griddy_seed_client(seed, "users/signin", "griddy/users-signin")
    credentials = griddy.sign_in("jane.doe@example.com", "Password123")
    assert (
        credentials.account == "12345" and credentials.access_token == "eyJhbGciOi...YuIm5_MUeNFkA"
    )
    assert seed.asked(f"{API}/users/signin")["json"] == seed_request("griddy/users-signin")


def griddy_refresh_adapter(seed: SeedServer) -> None:
    griddy = griddy_seed_client(seed, "users/token/refresh", "griddy/users-token-refresh")
    credentials = Credentials(account="12345", refresh_token="eyJhbGciOi...YuIm5_MUeNFkA")
    griddy.renew(credentials)
    assert credentials.access_token == "eyJhbGciOi...uT9SO-W7iX0Ns"
    assert seed.asked(f"{API}/users/token/refresh")["json"] == seed_request(
        "griddy/users-token-refresh"
    )


def griddy_signout_adapter(seed: SeedServer) -> None:
    griddy = griddy_seed_client(seed, "users/signout", "griddy/users-signout")
    assert (
        griddy.disconnect(Credentials(refresh_token="eyJhbGciOi...uT9SO-W7iX0Ns"))
        == "signed out of Griddy"
    )
    assert seed.asked(f"{API}/users/signout")["json"] == seed_request("griddy/users-signout")


def griddy_members_adapter(seed: SeedServer) -> None:
    griddy = griddy_seed_client(seed, "members/get_all", "griddy/members-get-all")
    (member,) = griddy.members(MEMBER)
    assert member["memberID"] == "69a...12b"
    assert set(seed.asked(f"{API}/members/get_all")["json"]) == set(
        seed_request("griddy/members-get-all")
    )
    up = G.member_usage_point(member, G.ZONE, seed.url)
    assert up.title == "Griddy 123 Moorefield Rd Palmview"


def griddy_history_adapter(seed: SeedServer) -> None:
    griddy = griddy_seed_client(seed, "analytics/history", "griddy/analytics-history")
    history = griddy.history(MEMBER, "35001")
    assert seed.asked(f"{API}/analytics/history")["json"]["meterID"] == "35001"
    up = espi.builder.usage_point(local_time=G.ZONE)
    G.hourly_readings(up, history["hourly"])
    usage, price = up.meter_readings
    (r,) = [r for b in usage.interval_blocks for r in b.readings]
    assert (r.start, r.value, r.cost) == (G.epoch("2017-01-03T01:30:00Z"), 3800, 123000)  # Wh
    (p,) = [r for b in price.interval_blocks for r in b.readings]
    assert Decimal(p.value).scaleb(int(price.reading_type.power_of_ten_multiplier)) == Decimal(
        "0.012"
    )


def griddy_usage_adapter(seed: SeedServer) -> None:
    griddy = griddy_seed_client(seed, "analytics/usage", "griddy/analytics-usage")
    tree = griddy.usage(MEMBER, "20007", "2018-09-01", "yearly")
    assert seed.asked(f"{API}/analytics/usage")["json"] == seed_request("griddy/analytics-usage")
    assert [r["usage_kwh"] for r in G.usage_rows(tree)] == [Decimal("657.6"), Decimal("34.4")]
    up = espi.builder.usage_point(local_time=G.ZONE)
    mr = G.usage_reading(up, tree)
    assert mr is not None
    readings = [r for b in mr.interval_blocks for r in b.readings]
    assert [(r.value, r.cost) for r in readings] == [(657600, 1656000), (34400, 93000)]  # Wh
    assert readings[0].duration == G.epoch("2019-03-01T00:00:00-06:00") - G.epoch(
        "2019-02-01T00:00:00-06:00"
    )


def griddy_savings_adapter(seed: SeedServer) -> None:
    griddy = griddy_seed_client(seed, "analytics/savings", "griddy/analytics-savings")
    savings = griddy.savings(MEMBER, "21527b3d0-3585-428a-8fbc-5bc730a35001")
    assert seed.asked(f"{API}/analytics/savings")["json"] == seed_request(
        "griddy/analytics-savings"
    )
    first, second = (G.savings_items(row) for row in savings["monthly"])
    assert (first[0].amount, first[0].item_kind) == (-42000, ItemKind.INFORMATION)
    assert "rolling" in second[0].note  # is_rolling_avg: true


def griddy_statement_adapter(seed: SeedServer) -> None:
    griddy = griddy_seed_client(seed, "billing/summary", "griddy/billing-summary")
    statement = griddy.statement(MEMBER, "0c3...d64", 2017, 4)
    assert seed.asked(f"{API}/billing/summary")["json"] == seed_request("griddy/billing-summary")
    up = espi.builder.usage_point(local_time=G.ZONE)
    summary = G.statement_summary(up, statement, G.ZONE)
    assert (
        summary.bill_last_period == 23498000
        and summary.overall_consumption_last_period.value == 5400
    )
    assert summary.billing_period.start == G.epoch("2017-04-01T00:00:00-05:00")
    items = {
        li.note: (li.amount, li.item_kind) for li in summary.cost_additional_detail_last_period
    }
    assert items["TDU Delivery Charges"] == (2579000, ItemKind.ENERGY_DELIVERY_FEE)
    assert items["Beginning account balance"] == (20089000, ItemKind.INFORMATION)
    assert espi.validate(espi.dumps(espi.builder.feed(up))) == []


def griddy_getnow_adapter(seed: SeedServer) -> None:
    griddy = griddy_seed_client(seed, "insights/getnow", "griddy/insights-getnow")
    prices = griddy.prices(MEMBER, "someSettlementPoint")
    assert seed.asked(f"{API}/insights/getnow")["json"] == seed_request("griddy/insights-getnow")
    (now,) = prices.now
    assert now.start == G.epoch("2018-05-02T16:05:00-05:00") and now.cents_per_kwh == Decimal(
        "0.45"
    )
    assert prices.seconds_until_refresh == 5


REPLAYS: dict[str, Replay] = {
    "pelm/connect-token": Replay(pelm_connect_token, pelm_connect_token_adapter),
    "pelm/token": Replay(pelm_token, pelm_token_adapter),
    "pelm/accounts": Replay(pelm_accounts, pelm_feed_adapter),
    "pelm/intervals": Replay(pelm_intervals, pelm_feed_adapter),
    "pelm/bills": Replay(pelm_bills, pelm_feed_adapter),
    "wattshift/session-token": Replay(wattshift_session_token, wattshift_session_token_adapter),
    "wattshift/utility-get": Replay(wattshift_utility_get, wattshift_utility_get_adapter),
    "wattshift/homes-create": Replay(wattshift_homes_create, wattshift_homes_create_adapter),
    "wattshift/solar-create": Replay(wattshift_solar_create, wattshift_solar_create_adapter),
    "wattzon/create-profile": Replay(wattzon_create_profile, wattzon_adapter),
    "wattzon/transmission-key": Replay(
        lambda live: [live.call("GET", f"{LINK}/profiles/keys/")], wattzon_key_adapter
    ),
    "wattzon/add-sensitive": Replay(wattzon_add_sensitive, wattzon_sensitive_adapter),
    "wattzon/start-job": Replay(wattzon_start_job, wattzon_adapter),
    "wattzon/job-status": Replay(wattzon_job_status, wattzon_adapter),
    "wattzon/bills": Replay(wattzon_bills, wattzon_bills_adapter),
    "wattzon/echo": Replay(wattzon_echo, wattzon_adapter),
    "wattzon/echo-curl": Replay(
        wattzon_echo_curl, None, "a request alone; the adapter's echo is the GET of wattzon/echo"
    ),
    "wattzon/create-profile-curl": Replay(
        wattzon_request_only("POST", f"{LINK}/profiles", "wattzon/create-profile-curl"),
        wattzon_adapter,
    ),
    "wattzon/change-profile-curl": Replay(
        wattzon_request_only("PUT", LINK + "/profiles/{pid}", "wattzon/change-profile-curl"),
        None,
        "a request alone; change_profile sends what it is given",
    ),
    "wattzon/add-sensitive-curl": Replay(wattzon_add_sensitive_curl, wattzon_sensitive_adapter),
    "wattzon/change-sensitive-curl": Replay(
        wattzon_change_sensitive,
        None,
        "a request alone; set_sensitive(replace=True) is the same body",
    ),
    "wattzon/add-tag-curl": Replay(
        wattzon_request_only("POST", LINK + "/profiles/{pid}/tags", "wattzon/add-tag-curl"),
        None,
        "a request alone; add_tag sends {name}",
    ),
    "wattzon/delete-tag-curl": Replay(
        wattzon_delete_tag, None, "a request alone; delete_tag sends {name}"
    ),
    "wattzon/start-job-curl": Replay(wattzon_start_job_curl, wattzon_adapter),
    "wattzon/sqs-notification": Replay(wattzon_notification, wattzon_notification_adapter),
    "griddy/errors": Replay(griddy_errors, griddy_errors_adapter),
    "griddy/users-signin": Replay(griddy_post("griddy/users-signin"), griddy_signin_adapter),
    "griddy/users-token-refresh": Replay(griddy_refresh, griddy_refresh_adapter),
    "griddy/users-signout": Replay(griddy_signout, griddy_signout_adapter),
    "griddy/members-get-all": Replay(
        griddy_post("griddy/members-get-all", userID="user"), griddy_members_adapter
    ),
    "griddy/meter-get-meter": Replay(
        griddy_get_meter, None, "admin only: the adapter reads members/get_all instead"
    ),
    "griddy/analytics-history": Replay(
        griddy_post("griddy/analytics-history", meterID="meter"), griddy_history_adapter
    ),
    "griddy/analytics-usage": Replay(
        griddy_post("griddy/analytics-usage", meterID="meter"), griddy_usage_adapter
    ),
    "griddy/analytics-savings": Replay(
        griddy_post("griddy/analytics-savings", memberID="member"), griddy_savings_adapter
    ),
    "griddy/billing-summary": Replay(
        griddy_post("griddy/billing-summary", memberID="member"), griddy_statement_adapter
    ),
    "griddy/insights-getnow": Replay(
        griddy_post(
            "griddy/insights-getnow", settlement_point="LZ_HOUSTON"
        ),  # "someSettlementPoint"
        griddy_getnow_adapter,
    ),
}


def test_every_example_is_replayed_or_says_why() -> None:
    assert set(REPLAYS) <= set(EXAMPLES)
    for ident, example in EXAMPLES.items():
        replayed, why = ident in REPLAYS, example.get("not_replayed")
        assert replayed != bool(why), f"{ident}: replayed and excused, or neither"
        parts = [example.get("request") or {}, *example["responses"]]
        if replayed:
            assert not any(p.get("unparsed") for p in parts), ident
    for ident, replay in REPLAYS.items():
        assert replay.fake is not None and (replay.adapter is not None or replay.why), ident


@pytest.mark.parametrize("ident", sorted(REPLAYS))
def test_the_fake_answers_the_seeds_request_in_the_seeds_shape(
    ident: str, request: pytest.FixtureRequest
) -> None:
    replay = REPLAYS[ident]
    assert replay.fake is not None
    live: Live = request.getfixturevalue(f"live_{ident.split('/')[0]}")
    example = EXAMPLES[ident]
    answers = replay.fake(live)
    seeds = [r["json"] for r in example["responses"]]
    assert len(answers) == len(seeds)
    for seed_answer, answer in zip(seeds, answers, strict=True):
        assert shape_problems(seed_answer, answer, example.get("typos", {})) == []


@pytest.mark.parametrize("ident", sorted(i for i, r in REPLAYS.items() if r.adapter is not None))
def test_the_adapter_maps_the_seeds_answer(ident: str, seed: SeedServer) -> None:
    adapter = REPLAYS[ident].adapter
    assert adapter is not None
    adapter(seed)


def test_shape_problems_are_named() -> None:
    seed_answer = {"a": 1, "b": [{"c": "x"}], "meta_data": {"k": "v"}, "descriptoion": ""}
    assert shape_problems(seed_answer, {"a": 2, "b": [{"c": "y"}], "meta_data": {}, "description": ""},
                          {"descriptoion": "description"}) == []  # fmt: skip
    assert shape_problems(seed_answer, {"a": "2", "b": [{}], "meta_data": {}}, {}) == [
        "a: number in the seed, str here", "b.[0].c: missing", "descriptoion: missing",
    ]  # fmt: skip
