"""The custodian's OAuth as an attacker tries it, over real HTTP: races on codes and refresh
tokens (SQLite and PostgreSQL), the login's ``next``, scope beyond the registration, framing,
cross-site posts, secrets at rest, PKCE, the sandbox shortcut, redirect URIs, state, client
authentication and revocation."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import func, select, text, update

import espi
from datacustodian import DEFAULT_SCOPE, create_app, db
from tests.conftest import fresh_postgres
from tests.custodian.conftest import (
    AUTHORIZE,
    REDIRECT,
    TEST_AUTHORIZE,
    redirected,
    serve_custodian,
)

#: What a usage-only third party registers for: no retail-customer blocks (51-70).
USAGE_ONLY = "FB=1_3_4_5_13;IntervalDuration=900_3600;BlockDuration=Daily;HistoryLength=34128000"


def tokens_of(custodian, authorization_id: int) -> int:
    with custodian.app.app_context():
        return db.session().scalar(  # type: ignore[no-any-return]
            select(func.count())
            .select_from(db.Token)
            .where(db.Token.authorization_id == authorization_id)
        )


def race(count: int, call) -> list[requests.Response]:
    """``count`` threads make ``call(n)`` at the same moment (each its own HTTP connection)."""
    start = threading.Barrier(count)

    def one(n: int) -> requests.Response:
        start.wait()
        return call(n)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def one_winner(answers: list[requests.Response]) -> dict:
    """The one token answer among ``answers``; all the others must be ``invalid_grant``."""
    won = [r for r in answers if r.status_code == 200]
    assert len(won) == 1, [r.status_code for r in answers]
    lost = [r for r in answers if r.status_code != 200]
    assert all(r.status_code == 400 and r.json()["error"] == "invalid_grant" for r in lost)
    return won[0].json()  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- one winner


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def raced(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"race-{request.param}")
    with contextlib.ExitStack() as stack:
        url = (
            stack.enter_context(fresh_postgres())
            if request.param == "postgresql"
            else f"sqlite:///{folder}/dc.sqlite"
        )
        yield stack.enter_context(serve_custodian(url, folder, "http://127.0.0.1:9/n"))


def test_a_code_is_redeemed_once_under_a_race(raced):
    code = raced.code()
    won = one_winner(
        race(
            20,
            lambda _: raced.token(
                grant_type="authorization_code", code=code, redirect_uri=REDIRECT
            ),
        )
    )
    aid = int(won["authorizationURI"].rsplit("/", 1)[1])
    assert tokens_of(raced, aid) == 1, "exactly one token pair was issued"


def test_a_refresh_token_is_redeemed_once_under_a_race(raced):
    first = raced.customer_tokens()
    fresh = one_winner(
        race(
            20,
            lambda _: raced.token(grant_type="refresh_token", refresh_token=first["refresh_token"]),
        )
    )
    aid = int(first["authorizationURI"].rsplit("/", 1)[1])
    assert tokens_of(raced, aid) == 2, "the first pair and exactly one refreshed pair"
    sid = first["resourceURI"].rsplit("/", 1)[1]
    assert raced.get(f"/Subscription/{sid}/UsagePoint", fresh["access_token"]).status_code == 200
    assert raced.get(f"/Subscription/{sid}/UsagePoint", first["access_token"]).status_code == 401


def test_a_refresh_racing_a_revocation_leaves_nothing_usable(raced):
    first = raced.customer_tokens()
    aid = first["authorizationURI"].rsplit("/", 1)[1]
    sid = first["resourceURI"].rsplit("/", 1)[1]
    client = raced.client_token()

    def refresh_or_revoke(n: int) -> requests.Response:
        if n == 0:
            return requests.delete(f"{raced.resource}/Authorization/{aid}",
                                   headers={"Authorization": f"Bearer {client}"}, timeout=30)  # fmt: skip
        return raced.token(grant_type="refresh_token", refresh_token=first["refresh_token"])

    answers = race(10, refresh_or_revoke)
    assert answers[0].status_code == 204
    assert sum(r.status_code == 200 for r in answers[1:]) <= 1
    for r in answers[1:]:
        if r.status_code == 200:  # refreshed before the revocation: revoked with it
            fresh = r.json()
            gone = raced.get(f"/Subscription/{sid}/UsagePoint", fresh["access_token"])
            assert gone.status_code == 401
            again = raced.token(grant_type="refresh_token", refresh_token=fresh["refresh_token"])
            assert again.status_code == 400
    assert raced.get(f"/Subscription/{sid}/UsagePoint", first["access_token"]).status_code == 401


# --------------------------------------------------------------------------- login


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/phish",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil",
        "\\/evil.example",
        "///evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        " //evil.example",
        "https:/\\evil.example",
        "http:evil.example",
        "javascript:alert(1)",
        "evil.example/phish",
        "",
    ],
)
def test_login_goes_on_only_to_a_local_path(custodian, target):
    r = requests.post(f"{custodian.base}/datacustodian/login", params={"next": target},
                      data={"username": "alice", "password": "sandbox-alice"}, allow_redirects=False,
                      timeout=10)  # fmt: skip
    assert r.status_code == 302
    location = urlsplit(r.headers["Location"])
    assert location.netloc in ("", urlsplit(custodian.base).netloc) and location.path == "/"


def test_login_goes_on_to_the_authorize_request_it_came_from(custodian):
    browser = requests.Session()
    page = browser.get(custodian.base + AUTHORIZE, params=custodian.authorize_params(), timeout=10)
    assert "Sign in to share your energy data" in page.text
    r = browser.post(page.url, data={"username": "alice", "password": "sandbox-alice"},
                     allow_redirects=False, timeout=10)  # fmt: skip
    location = r.headers["Location"]
    assert location.startswith(AUTHORIZE + "?") and "client_id=" in location


# --------------------------------------------------------------------------- scope


def test_a_client_gets_no_more_than_its_registered_scope(custodian):
    usage_only = custodian.register("Usage only", USAGE_ONLY)
    browser = custodian.sign_in("alice")
    # asking for customer information it did not register for: refused back to it
    wider = custodian.authorize(AUTHORIZE, browser, creds=usage_only, scope=DEFAULT_SCOPE)
    query = redirected(wider)
    assert query["error"] == ["invalid_scope"] and query["state"] == ["s1"] and "code" not in query
    sandbox = custodian.authorize(creds=usage_only, scope=DEFAULT_SCOPE)
    assert redirected(sandbox)["error"] == ["invalid_scope"]
    # the consent form tampered with to name a wider scope
    params = custodian.authorize_params(usage_only)
    consent = browser.get(custodian.base + AUTHORIZE, params=params, timeout=10)
    assert consent.status_code == 200 and "Usage only</strong> asks" in consent.text
    assert "Your name and contact details" not in consent.text
    ids = re.findall(r'name="usage_point" value="(\d+)"', consent.text)
    tampered = browser.post(consent.url, data={"decision": "approve", "usage_point": ids,
                                               "scope": DEFAULT_SCOPE}, allow_redirects=False, timeout=10)  # fmt: skip
    assert redirected(tampered)["error"] == ["invalid_scope"]
    # the honest consent: the registered scope, in the token and at the resources
    approved = browser.post(consent.url, data={"decision": "approve", "usage_point": ids},
                            allow_redirects=False, timeout=10)  # fmt: skip
    code = redirected(approved)["code"][0]
    tokens = custodian.token(
        usage_only, grant_type="authorization_code", code=code, redirect_uri=REDIRECT
    ).json()
    assert tokens["scope"] == USAGE_ONLY
    sid = int(tokens["resourceURI"].rsplit("/", 1)[1])
    access = tokens["access_token"]
    assert custodian.get(f"/Subscription/{sid}/UsagePoint", access).status_code == 200
    for path in (f"/Batch/RetailCustomer/{sid}", f"/Batch/RetailDRPrgInfo/{sid}"):
        refused = custodian.get(path, access)
        assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
    # an authorization stored wider than the registration (before this check existed)
    with custodian.app.app_context():
        s = db.session()
        s.execute(
            update(db.Authorization).where(db.Authorization.id == sid).values(scope=DEFAULT_SCOPE)
        )
        s.commit()
    assert custodian.get(f"/Batch/RetailCustomer/{sid}", access).status_code == 403
    assert custodian.get(f"/Batch/RetailDRPrgInfo/{sid}", access).status_code == 403
    # nor a client token wider than the registration
    r = custodian.token(usage_only, grant_type="client_credentials", scope=DEFAULT_SCOPE)
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


def test_a_narrower_request_is_granted_narrower(custodian):
    browser = custodian.sign_in("bob")
    consent = browser.get(custodian.base + AUTHORIZE, params=custodian.authorize_params(scope=USAGE_ONLY),
                          timeout=10)  # fmt: skip
    ids = re.findall(r'name="usage_point" value="(\d+)"', consent.text)
    approved = browser.post(consent.url, data={"decision": "approve", "usage_point": ids},
                            allow_redirects=False, timeout=10)  # fmt: skip
    code = redirected(approved)["code"][0]
    tokens = custodian.token(
        grant_type="authorization_code", code=code, redirect_uri=REDIRECT
    ).json()
    assert tokens["scope"] == USAGE_ONLY
    sid = tokens["resourceURI"].rsplit("/", 1)[1]
    assert custodian.get(f"/Batch/RetailCustomer/{sid}", tokens["access_token"]).status_code == 403


# --------------------------------------------------------------------------- pages


def assert_unframeable(r: requests.Response) -> None:
    assert "frame-ancestors 'none'" in r.headers.get("Content-Security-Policy", ""), r.url
    assert r.headers.get("X-Frame-Options") == "DENY", r.url
    assert r.headers.get("X-Content-Type-Options") == "nosniff", r.url
    assert r.headers.get("Referrer-Policy") == "same-origin", r.url


def test_pages_cannot_be_framed(custodian):
    login = requests.get(f"{custodian.base}/datacustodian/login", timeout=10)
    assert_unframeable(login)
    assert "no-store" in login.headers["Cache-Control"]
    browser = custodian.sign_in("alice")
    consent = browser.get(
        custodian.base + AUTHORIZE, params=custodian.authorize_params(), timeout=10
    )
    assert consent.status_code == 200 and "asks for your energy data" in consent.text
    assert_unframeable(consent)
    assert "no-store" in consent.headers["Cache-Control"]
    error = browser.get(custodian.base + AUTHORIZE, params={"response_type": "code", "client_id": "nobody"},
                        timeout=10)  # fmt: skip
    assert error.status_code == 400
    assert_unframeable(error)
    assert_unframeable(requests.get(f"{custodian.base}/", timeout=10))
    assert_unframeable(custodian.get("/ReadServiceStatus"))


def test_cross_site_posts_to_the_pages_are_refused(custodian):
    browser = custodian.sign_in("alice")
    consent = browser.get(
        custodian.base + AUTHORIZE, params=custodian.authorize_params(), timeout=10
    )
    ids = re.findall(r'name="usage_point" value="(\d+)"', consent.text)
    approve = {"decision": "approve", "usage_point": ids}
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "null"}, {"Sec-Fetch-Site": "same-site"}):  # fmt: skip
        forged = browser.post(consent.url, data=approve, headers=headers, allow_redirects=False,
                              timeout=10)  # fmt: skip
        assert forged.status_code == 403 and "Location" not in forged.headers, headers
        login = requests.post(f"{custodian.base}/datacustodian/login", headers=headers,
                              data={"username": "bob", "password": "sandbox-bob"}, allow_redirects=False,
                              timeout=10)  # fmt: skip
        assert login.status_code == 403 and "Set-Cookie" not in login.headers, headers
    same = {"Origin": custodian.base, "Sec-Fetch-Site": "same-origin"}
    approved = browser.post(
        consent.url, data=approve, headers=same, allow_redirects=False, timeout=10
    )
    assert "code" in redirected(approved)


# --------------------------------------------------------------------------- secrets at rest


def dump(custodian, table: str) -> str:
    with custodian.app.app_context():
        rows = db.session().execute(text(f"SELECT * FROM {table}")).all()  # noqa: S608 - test tables
    return repr(rows)


def test_secrets_codes_and_tokens_are_kept_hashed(custodian):
    creds = custodian.register("Hashed", DEFAULT_SCOPE)
    code = custodian.code(creds=creds)
    assert code not in dump(custodian, "auth_code")
    assert hashlib.sha256(code.encode()).hexdigest() in dump(custodian, "auth_code")
    customer = custodian.token(
        creds, grant_type="authorization_code", code=code, redirect_uri=REDIRECT
    ).json()
    client = custodian.token(creds, grant_type="client_credentials").json()["client_access_token"]
    plain = [creds["client_secret"], creds["registration_access_token"], customer["access_token"],
             customer["refresh_token"], client]  # fmt: skip
    stored = dump(custodian, "client") + dump(custodian, "token")
    for value in plain:
        assert value not in stored
        assert hashlib.sha256(value.encode()).hexdigest() in stored
    # still usable: each is found by its hash
    sid = customer["resourceURI"].rsplit("/", 1)[1]
    assert (
        custodian.get(f"/Subscription/{sid}/UsagePoint", customer["access_token"]).status_code
        == 200
    )
    assert custodian.get("/ReadServiceStatus", client).status_code == 200
    info = custodian.get(f"/ApplicationInformation/{creds['application_information_id']}",
                         creds["registration_access_token"])  # fmt: skip
    assert info.status_code == 200 and creds["registration_access_token"] in info.text
    assert creds["client_secret"] not in info.text, "shown once, at registration"
    assert custodian.token(
        creds, grant_type="refresh_token", refresh_token=customer["refresh_token"]
    ).ok


# --------------------------------------------------------------------------- PKCE


def s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def test_pkce_takes_s256_only(custodian):
    verifier = secrets.token_urlsafe(48)
    for asked in ({"code_challenge": verifier, "code_challenge_method": "plain"},
                  {"code_challenge": verifier}):  # fmt: skip
        query = redirected(custodian.authorize(**asked))
        assert query["error"] == ["invalid_request"] and query["state"] == ["s1"]
        assert "S256" in query["error_description"][0] and "code" not in query
    code = custodian.code(code_challenge=s256(verifier), code_challenge_method="S256")
    redeem = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    missing = custodian.token(**redeem)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    wrong = custodian.token(**redeem, code_verifier=secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert custodian.token(**redeem, code_verifier=verifier).status_code == 200


# --------------------------------------------------------------------------- the sandbox shortcut


def test_the_test_authorize_shortcut_is_off_unless_the_sandbox_enables_it(tmp_path, monkeypatch):
    with serve_custodian(f"sqlite:///{tmp_path}/dc.sqlite", tmp_path, "http://127.0.0.1:9/n",
                         SANDBOX_TEST_AUTHORIZE=False) as off:  # fmt: skip
        r = off.authorize()
        assert r.status_code == 404 and "Location" not in r.headers
        assert "SANDBOX_TEST_AUTHORIZE" in r.text
        assert off.authorize(AUTHORIZE).status_code == 302, (
            "the real one asks the customer to sign in"
        )
    files = {"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/d.sqlite",
             "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite"}  # fmt: skip
    assert create_app(files).config["SANDBOX_TEST_AUTHORIZE"] is False
    monkeypatch.setenv("DATACUSTODIAN_SANDBOX_TEST_AUTHORIZE", "true")
    assert create_app(files).config["SANDBOX_TEST_AUTHORIZE"] is True


# --------------------------------------------------------------------------- other surfaces


@pytest.mark.parametrize(
    "uri",
    [
        REDIRECT + "/",
        REDIRECT + "/../evil",
        REDIRECT + "?x=1",
        REDIRECT + "#x",
        REDIRECT.upper(),
        REDIRECT.replace(":9/", ":99/"),
        REDIRECT.replace("http:", "https:"),
        "https://evil.example/callback",
        "//evil.example/callback",
    ],
)
def test_the_redirect_uri_must_match_a_registered_one_exactly(custodian, uri):
    for path, session in ((TEST_AUTHORIZE, None), (AUTHORIZE, custodian.sign_in("alice"))):
        r = custodian.authorize(path, session, redirect_uri=uri)
        assert r.status_code == 400 and "Location" not in r.headers, (path, r.text[:200])


def test_the_code_is_bound_to_its_redirect_uri(custodian):
    code = custodian.code()
    for uri in (REDIRECT + "/x", None):
        data = {"grant_type": "authorization_code", "code": code}
        if uri:
            data["redirect_uri"] = uri
        r = custodian.token(**data)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert custodian.token(grant_type="authorization_code", code=code, redirect_uri=REDIRECT).ok


@pytest.mark.parametrize("state", ["s1", "a b&c=d#e%f/é", "x" * 500])
def test_state_comes_back_exactly(custodian, state):
    assert redirected(custodian.authorize(state=state))["state"] == [state]
    browser = custodian.sign_in("alice")
    consent = browser.get(custodian.base + AUTHORIZE, params=custodian.authorize_params(state=state),
                          timeout=10)  # fmt: skip
    denied = browser.post(consent.url, data={"decision": "deny"}, allow_redirects=False, timeout=10)
    query = redirected(denied)
    assert query["error"] == ["access_denied"] and query["state"] == [state]
    refused = custodian.authorize(state=state, scope="FB=1_99")
    assert redirected(refused)["state"] == [state]


def test_a_third_party_cannot_use_another_ones_code_or_refresh_token(custodian):
    other = custodian.register("Other", DEFAULT_SCOPE)
    code = custodian.code()
    stolen = custodian.token(
        other, grant_type="authorization_code", code=code, redirect_uri=REDIRECT
    )
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    mixed = {"client_id": custodian.creds["client_id"], "client_secret": other["client_secret"]}
    for creds in (mixed, {"client_id": custodian.creds["client_id"], "client_secret": ""}):
        r = custodian.token(
            creds, grant_type="authorization_code", code=code, redirect_uri=REDIRECT
        )
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    public = requests.post(f"{custodian.base}/datacustodian/oauth/v2/token", timeout=10,
                           data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                 "client_id": custodian.creds["client_id"]})  # fmt: skip
    assert public.status_code == 401
    mine = custodian.token(grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert mine.status_code == 200, "the owner's code was not spent by the others' attempts"
    refresh = mine.json()["refresh_token"]
    stolen = custodian.token(other, grant_type="refresh_token", refresh_token=refresh)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    assert custodian.token(grant_type="refresh_token", refresh_token=refresh).status_code == 200


def test_revoking_an_authorization_spends_its_code_and_tokens(custodian):
    code = custodian.code()
    client = custodian.client_token()
    listed = espi.parse(custodian.get("/Authorization", client).content).authorizations
    aid = listed[-1].authorization_uri.rsplit("/", 1)[1]  # the code's, made at consent
    revoke = requests.delete(f"{custodian.resource}/Authorization/{aid}",
                             headers={"Authorization": f"Bearer {client}"}, timeout=10)  # fmt: skip
    assert revoke.status_code == 204
    late = custodian.token(grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
    assert tokens_of(custodian, int(aid)) == 0
