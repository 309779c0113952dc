"""A live data custodian on a loopback port, and a third party's notification receiver."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


@dataclass
class Custodian:
    base: str
    app: Any
    creds: dict[str, Any]

    @property
    def resource(self) -> str:
        return f"{self.base}/GreenButtonConnect/espi/1_1/resource"

    def token(self, **data: str) -> requests.Response:
        return requests.post(
            f"{self.base}/datacustodian/oauth/v2/token", data=data,
            auth=(self.creds["client_id"], self.creds["client_secret"]), timeout=10,
        )  # fmt: skip

    def client_token(self) -> str:
        return self.token(grant_type="client_credentials").json()["client_access_token"]

    def code(
        self,
        path: str = "/datacustodian/test/oauth/v2/authorize",
        session: Any = None,
        **extra: str,
    ) -> str:
        params = {"response_type": "code", "client_id": self.creds["client_id"], "redirect_uri": REDIRECT,
                  "state": "s1", **extra}  # fmt: skip
        r = (session or requests).get(
            self.base + path, params=params, allow_redirects=False, timeout=10
        )
        assert r.status_code == 302, r.text
        query = parse_qs(urlparse(r.headers["Location"]).query)
        assert query["state"] == ["s1"]
        return query["code"][0]

    def customer_tokens(self) -> dict[str, Any]:
        r = self.token(grant_type="authorization_code", code=self.code(), redirect_uri=REDIRECT)
        assert r.status_code == 200, r.text
        return r.json()

    def get(self, path: str, token: str | None = None, **params: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = path if path.startswith("http") else self.resource + path
        return requests.get(url, headers=headers, params=params, timeout=30)


@pytest.fixture(scope="session")
def custodian(tmp_path_factory, receiver):
    folder = tmp_path_factory.mktemp("datacustodian")
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{folder}/dc.sqlite",
        "QUEUE_URL": f"sqlite:///{folder}/queue.sqlite",
        "NOTIFY_DELAY": 0,
        "NOTIFY_RETRY_DELAY": 1,
        "EMBEDDED_WORKER": True,
        "RATE_LIMIT": "",  # tested on its own custodian (test_guard.py)
    })  # fmt: skip
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["BASE_URL"] = f"http://127.0.0.1:{server.server_port}"
    with app.app_context():
        upgrade(app)
        seed(months=2)
        creds = register("Test Solar", [REDIRECT], receiver.url, DEFAULT_SCOPE)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Custodian(app.config["BASE_URL"], app, creds)
    server.shutdown()
    server.server_close()
    app.extensions["dc.consumer"].stop()
