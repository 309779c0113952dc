"""Mutual TLS as PG&E does it (400 "Invalid Certificate") and rate limits, over real TLS."""

from __future__ import annotations

import threading

import pytest
import requests
from werkzeug.serving import make_server

from datacustodian import DEFAULT_SCOPE, create_app, register
from datacustodian.guard import tls_context
from datacustodian.migrate import upgrade
from tests.certs import make_certs


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("guarded")
    certs = make_certs(folder / "certs")
    app = create_app({
        "TESTING": True, "DATABASE_URL": f"sqlite:///{folder}/dc.sqlite",
        "QUEUE_URL": f"sqlite:///{folder}/q.sqlite", "CLIENT_CA": str(certs / "ca.pem"),
        "RATE_LIMIT": "4 per minute",
    })  # fmt: skip
    ctx = tls_context(str(certs / "server.pem"), str(certs / "server.key"), str(certs / "ca.pem"))
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=ctx)
    base = f"https://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = base
    with app.app_context():
        upgrade(app)
        creds = register(
            "TLS third party", ["https://tp.test/cb"], "https://tp.test/n", DEFAULT_SCOPE
        )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield base, creds, certs
    server.shutdown()
    server.server_close()


def test_calls_without_a_client_certificate_get_400(guarded):
    base, creds, certs = guarded
    r = requests.post(f"{base}/datacustodian/oauth/v2/token", data={"grant_type": "client_credentials"},
                      auth=(creds["client_id"], creds["client_secret"]), verify=certs / "ca.pem", timeout=10)  # fmt: skip
    assert r.status_code == 400 and r.text == "Invalid Certificate"
    home = requests.get(f"{base}/", verify=certs / "ca.pem", timeout=10)
    assert home.status_code == 200, "the customer's pages need no certificate"


def test_with_a_certificate_and_then_too_fast(guarded):
    base, creds, certs = guarded
    tls = {
        "verify": certs / "ca.pem",
        "cert": (certs / "client.pem", certs / "client.key"),
        "timeout": 10,
    }
    r = requests.post(f"{base}/datacustodian/oauth/v2/token", data={"grant_type": "client_credentials"},
                      auth=(creds["client_id"], creds["client_secret"]), **tls)  # fmt: skip
    assert r.status_code == 200
    headers = {"Authorization": f"Bearer {r.json()['client_access_token']}"}
    status = [requests.get(f"{base}/GreenButtonConnect/espi/1_1/resource/ReadServiceStatus", headers=headers,
                           **tls).status_code for _ in range(5)]  # fmt: skip
    assert status[:4] == [200] * 4 and status[4] == 429
    limited = requests.get(
        f"{base}/GreenButtonConnect/espi/1_1/resource/ReadServiceStatus", headers=headers, **tls
    )
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"] == "rate_limited"
