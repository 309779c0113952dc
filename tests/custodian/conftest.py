"""A live data custodian on a loopback port, and a third party's notification receiver."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from werkzeug.serving import make_server

from datacustodian import DEFAULT_SCOPE, create_app, register
from datacustodian.migrate import upgrade
from datacustodian.sandbox import seed

REDIRECT = "http://127.0.0.1:9/callback"  # never called: the tests read the Location header


@dataclass
class Receiver:
    """The third party's notification endpoint: records BatchLists; can be made to fail."""

    url: str = ""
    bodies: list[bytes] = field(default_factory=list)
    fail_next: int = 0
    attempts: int = 0

    def wait(self, count: int = 1, timeout: float = 20) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.bodies) >= count, f"no notification within {timeout} s"
        return self.bodies


@pytest.fixture(scope="session")
def receiver():
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            rec.attempts += 1
            if rec.fail_next > 0:
                rec.fail_next -= 1
                self.send_response(503)
            else:
                rec.bodies.append(body)
                self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_port}/espi/1_1/Notification"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield rec
    server.shutdown()
    server.server_close()


AUTHORIZE = "/datacustodian/oauth/v2/authorize"
TEST_AUTHORIZE = "/datacustodian/test/oauth/v2/authorize"


@dataclass
class Custodian:
    base: str
    app: Any
    creds: dict[str, Any]

    @property
    def resource(self) -> str:
        return f"{self.base}/GreenButtonConnect/espi/1_1/resource"

    def register(self, name: str, scope: str, redirect_uri: str = REDIRECT) -> dict[str, Any]:
        """Another third party's credentials."""
        with self.app.app_context():
            return register(name, [redirect_uri], "http://127.0.0.1:9/n", scope)  # type: ignore[no-any-return]

    def token(self, creds: dict[str, Any] | None = None, **data: str) -> requests.Response:
        creds = creds or self.creds
        return requests.post(
            f"{self.base}/datacustodian/oauth/v2/token", data=data,
            auth=(creds["client_id"], creds["client_secret"]), timeout=30,
        )  # fmt: skip

    def client_token(self) -> str:
        return self.token(grant_type="client_credentials").json()["client_access_token"]

    def authorize_params(self, creds: dict[str, Any] | None = None, **extra: str) -> dict[str, str]:
        return {"response_type": "code", "client_id": (creds or self.creds)["client_id"],
                "redirect_uri": REDIRECT, "state": "s1", **extra}  # fmt: skip

    def authorize(
        self, path: str = TEST_AUTHORIZE, session: Any = None, **params: Any
    ) -> requests.Response:
        """The authorize endpoint's answer, not followed."""
        return (session or requests).get(  # type: ignore[no-any-return]
            self.base + path, params=self.authorize_params(**params), allow_redirects=False,
            timeout=10,
        )  # fmt: skip

    def code(self, path: str = TEST_AUTHORIZE, session: Any = None, **params: Any) -> str:
        r = self.authorize(path, session, **params)
        assert r.status_code == 302, r.text
        query = redirected(r)
        assert query["state"] == ["s1"], query
        return query["code"][0]

    def customer_tokens(self, creds: dict[str, Any] | None = None) -> dict[str, Any]:
        code = self.code(creds=creds)
        r = self.token(creds, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def sign_in(self, username: str = "alice") -> requests.Session:
        """A customer's browser, signed in."""
        browser = requests.Session()
        r = browser.post(f"{self.base}/datacustodian/login",
                         data={"username": username, "password": f"sandbox-{username}"}, timeout=10)  # fmt: skip
        assert r.status_code == 200, r.text
        return browser

    def get(self, path: str, token: str | None = None, **params: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = path if path.startswith("http") else self.resource + path
        return requests.get(url, headers=headers, params=params, timeout=30)


def redirected(r: requests.Response) -> dict[str, list[str]]:
    """The query of a redirect back to the third party."""
    assert r.status_code == 302, (r.status_code, r.text[:300])
    location = r.headers["Location"]
    assert location.startswith(REDIRECT + "?"), location
    return parse_qs(urlparse(location).query)


@contextlib.contextmanager
def serve_custodian(
    database_url: str, folder: Path, notification_uri: str, **config: Any
) -> Iterator[Custodian]:
    """A migrated, seeded custodian served on a loopback port with a registered third party
    (the test authorize shortcut on, as in a sandbox); stopped and disposed afterwards."""
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": database_url,
        "QUEUE_URL": f"sqlite:///{folder}/queue.sqlite",
        "NOTIFY_DELAY": 0,
        "NOTIFY_RETRY_DELAY": 1,
        "EMBEDDED_WORKER": True,
        "RATE_LIMIT": "",  # tested on its own custodian (test_guard.py)
        "SANDBOX_TEST_AUTHORIZE": True,
        **config,
    })  # fmt: skip
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["BASE_URL"] = f"http://127.0.0.1:{server.server_port}"
    with app.app_context():
        upgrade(app)
        seed(months=2)
        creds = register("Test Solar", [REDIRECT], notification_uri, DEFAULT_SCOPE)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Custodian(app.config["BASE_URL"], app, creds)
    finally:
        server.shutdown()
        server.server_close()
        app.extensions["dc.consumer"].stop()
        app.extensions["appkit.engine"].dispose()


@pytest.fixture(scope="session")
def custodian(tmp_path_factory, receiver):
    folder = tmp_path_factory.mktemp("datacustodian")
    with serve_custodian(f"sqlite:///{folder}/dc.sqlite", folder, receiver.url) as served:
        yield served
