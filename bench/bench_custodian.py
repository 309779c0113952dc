"""Benchmark: the data custodian serving a 13-month subscription, against reading those bytes.

    python bench/bench_custodian.py [--months 13] [--repeat 5] [--databases sqlite,postgresql]

The sandbox is seeded (alice: 15-minute electric readings with time-of-use costs and monthly
bills) and a third party authorized; then ``GET Batch/Subscription/{id}?correlationID=...``
(the answer to its notification: token and ownership checked, rows read, the feed written) is
timed through the whole app (Flask's test client, in this process, best of ``--repeat``
wall-clock), against reading the same bytes with ``espi.iter_readings`` (the baseline: what the
third party does with them) and ``espi.parse``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_api import best  # noqa: E402
from bench_ingest import database, header  # noqa: E402

REDIRECT = "http://127.0.0.1:9/callback"


def served(url: str, months: int, folder: str) -> tuple[Any, str, dict[str, str]]:
    """A seeded custodian (test client), the path of a prepared subscription answer, and the
    headers that fetch it."""
    from sqlalchemy import select

    from appkit import database as appdb
    from datacustodian import DEFAULT_SCOPE, create_app, db, register
    from datacustodian.migrate import upgrade
    from datacustodian.sandbox import seed

    app = create_app({"TESTING": True, "DATABASE_URL": url, "RATE_LIMIT": "",
                      "QUEUE_URL": f"sqlite:///{folder}/queue.sqlite",
                      "SANDBOX_TEST_AUTHORIZE": True})  # fmt: skip
    with app.app_context():
        upgrade(app)
        seed(months=months)
        creds = register("Bench", [REDIRECT], "http://127.0.0.1:9/n", DEFAULT_SCOPE)
    client = app.test_client()
    r = client.get("/datacustodian/test/oauth/v2/authorize", query_string={
        "response_type": "code", "client_id": creds["client_id"], "redirect_uri": REDIRECT,
        "state": "s"})  # fmt: skip
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    grant = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    r = client.post("/datacustodian/oauth/v2/token", data=grant,
                    auth=(creds["client_id"], creds["client_secret"]))  # fmt: skip
    tokens = r.json
    path = urlsplit(tokens["resourceURI"]).path
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get(path, headers=headers).status_code == 202
    with app.app_context():
        prepared = appdb.session().scalars(select(db.Prepared)).one()
    return client, f"{path}?correlationID={prepared.id}", headers


def run(url: str, months: int, repeat: int) -> dict[str, Any]:
    import espi

    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as folder:
        client, path, headers = served(url, months, folder)
        out: dict[str, Any] = {}

        def serve() -> None:
            r = client.get(path, headers=headers)
            assert r.status_code == 200, r.text[:300]
            out["body"] = r.data

        serve()  # warm: the writer's schema types, the first connections
        out["serve"] = best(repeat, serve)
    body = out["body"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", espi.EspiWarning)
        readings = sum(1 for _ in espi.iter_readings(body))
        out["iter_readings"] = best(repeat, lambda: sum(1 for _ in espi.iter_readings(body)))
        out["parse"] = best(repeat, lambda: espi.parse(body))
    out.update(readings=readings, size=len(body))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--months", type=int, default=13)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    print(header())
    print(f"the sandbox's first customer, {args.months} months; best of {args.repeat}, wall-clock")
    print(f"{'database':<12}{'readings':>9}{'MiB':>6}{'iter_readings ms':>18}{'parse ms':>10}"
          f"{'serve ms':>10}{'x iter_readings':>17}{'x parse':>9}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.databases.split(","):
            with database(kind, Path(tmp)) as url:
                got = run(url, args.months, args.repeat)
            read, parse, serve = (got[k] * 1000 for k in ("iter_readings", "parse", "serve"))
            print(f"{kind:<12}{got['readings']:>9,}{got['size'] / 2**20:>6.1f}{read:>18.0f}"
                  f"{parse:>10.0f}{serve:>10.0f}{serve / read:>17.2f}"
                  f"{serve / parse:>9.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
