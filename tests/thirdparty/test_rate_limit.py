"""The third party honours a custodian's rate limit (PG&E: one request a second)."""

from __future__ import annotations

import json
import threading

from werkzeug.serving import make_server

from datacustodian import DEFAULT_SCOPE, register
from datacustodian import create_app as create_custodian
from datacustodian.migrate import upgrade
from thirdparty_app import create_app


def test_requests_are_spaced_to_the_custodians_limit(tmp_path):
    custodian = create_custodian({
        "TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/dc.sqlite", "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite",
        "RATE_LIMIT": "1 per second",  # per token: back-to-back calls with one token get 429
    })  # fmt: skip
    server = make_server("127.0.0.1", 0, custodian, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    custodian.config["BASE_URL"] = base
    with custodian.app_context():
        upgrade(custodian)
        creds = register(
            "Limited", ["http://127.0.0.1:9/cb"], "http://127.0.0.1:9/n", DEFAULT_SCOPE
        )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    profile = {
        "token_url": f"{base}/datacustodian/oauth/v2/token", "resource_base": f"{base}/GreenButtonConnect/espi/1_1/resource",
        "client_id": creds["client_id"], "client_secret": creds["client_secret"],
    }  # fmt: skip
    try:
        third = create_app({
            "TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/tp.sqlite", "QUEUE_URL": f"sqlite:///{tmp_path}/tq.sqlite",
            "CUSTODIANS": {"polite": {**profile, "requests_per_second": 1}, "rude": {**profile, "requests_per_second": 1000}},
        })  # fmt: skip
        runner = third.test_cli_runner()
        polite = runner.invoke(args=["status", "--profile", "polite"])
        assert polite.exit_code == 0, polite.output
        assert json.loads(polite.output)["service_status"] == "Normal"
        rude = runner.invoke(args=["status", "--profile", "rude"])
        assert rude.exit_code != 0 and "HTTP 429" in str(rude.exception)
    finally:
        server.shutdown()
        server.server_close()
