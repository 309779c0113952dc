"""The third party against a custodian that demands client certificates (as PG&E does)."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select
from werkzeug.serving import make_server

from appkit import database
from datacustodian import DEFAULT_SCOPE, register
from datacustodian import create_app as create_custodian
from datacustodian.guard import tls_context
from datacustodian.migrate import upgrade
from datacustodian.sandbox import seed
from tests.certs import make_certs
from tests.thirdparty.browsing import Person
from thirdparty_app import MIGRATIONS, create_app, queueing
from thirdparty_app import db as tp


def test_connect_and_fetch_over_mutual_tls(tmp_path, monkeypatch):
    for name in (
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ):  # they would override the test CA in requests
        monkeypatch.delenv(name, raising=False)
    certs = make_certs(tmp_path / "certs")
    custodian = create_custodian({
        "TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/dc.sqlite", "QUEUE_URL": f"sqlite:///{tmp_path}/dq.sqlite",
        "CLIENT_CA": str(certs / "ca.pem"), "NOTIFY_DELAY": 0, "EMBEDDED_WORKER": True, "RATE_LIMIT": "",
        "SANDBOX_TEST_AUTHORIZE": True,
    })  # fmt: skip
    ctx = tls_context(str(certs / "server.pem"), str(certs / "server.key"), str(certs / "ca.pem"))
    c_server = make_server("127.0.0.1", 0, custodian, threaded=True, ssl_context=ctx)
    c_base = f"https://127.0.0.1:{c_server.server_port}"
    custodian.config["BASE_URL"] = c_base
    t_server = make_server("127.0.0.1", 0, None, threaded=True)
    t_base = f"http://127.0.0.1:{t_server.server_port}"
    with custodian.app_context():
        upgrade(custodian)
        seed(months=1)
        creds = register("TLS", [f"{t_base}/callback/tls", f"{t_base}/callback/nocert"], f"{t_base}/espi/1_1/Notification",
                         DEFAULT_SCOPE)  # fmt: skip
    endpoints = {
        "authorize_url": f"{c_base}/datacustodian/test/oauth/v2/authorize",
        "token_url": f"{c_base}/datacustodian/oauth/v2/token",
        "resource_base": f"{c_base}/GreenButtonConnect/espi/1_1/resource",
        "client_id": creds["client_id"], "client_secret": creds["client_secret"], "ca_bundle": str(certs / "ca.pem"),
    }  # fmt: skip
    third = create_app({
        "TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/tp.sqlite", "QUEUE_URL": f"sqlite:///{tmp_path}/tq.sqlite",
        "DOCUMENTS": str(tmp_path / "docs"), "EMBEDDED_WORKER": True,
        "CUSTODIANS": {
            "tls": {**endpoints, "client_cert": str(certs / "client.pem"), "client_key": str(certs / "client.key")},
            "nocert": endpoints,
        },
    })  # fmt: skip
    with third.app_context():
        database.upgrade(third, MIGRATIONS)
    t_server.app = third
    for server in (c_server, t_server):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser = Person.sign_up(t_base)
        # the customer's browser trusts the test CA; no client certificate
        browser.verify = str(certs / "ca.pem")
        refused = browser.connect("nocert")
        assert refused.status_code == 400 and "did not complete the connection" in refused.text
        with third.app_context():  # the custodian's answer: for the operator and the log
            why = database.session().scalar(
                select(tp.Connection.reason).where(tp.Connection.profile == "nocert")
            )
            database.close_session(None)
        assert "Invalid Certificate" in why and "Invalid Certificate" not in refused.text
        assert browser.connect("tls").status_code == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with third.app_context():
                s = database.session()
                conn = s.scalar(select(tp.Connection).where(tp.Connection.profile == "tls"))
                readings = s.scalar(select(func.count()).select_from(tp.Reading))
                database.close_session(None)
            if conn is not None and conn.status == "active":
                break
            time.sleep(0.2)
        assert conn is not None and conn.status == "active" and readings > 1000
    finally:
        for server in (c_server, t_server):
            server.shutdown()
            server.server_close()
        custodian.extensions["dc.consumer"].stop()
        queueing.of(third).consumer.stop()
