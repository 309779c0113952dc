"""A third-party app served on loopback against a scripted custodian (tests/scripted.py): for what
the live custodian does not do on purpose (503 or 202 forever, single-use refresh tokens that
are slow to answer, ...). On SQLite with the SQLite queue, or PostgreSQL with Redis."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import make_server

import espi
from appkit import database
from tests.conftest import fresh_postgres, fresh_redis
from tests.scripted import Answer, Seen
from tests.thirdparty.browsing import PASSWORD
from thirdparty_app import MIGRATIONS, create_app, queueing, vault
from thirdparty_app import db as tp
from thirdparty_app.accounts import create_account

RESOURCE = "/GreenButtonConnect/espi/1_1/resource"
TOKEN = json.dumps({"client_access_token": "client-token", "expires_in": 3600}).encode()


def on_sqlite(folder) -> dict[str, str]:
    """The third party's database and queue on SQLite, in ``folder`` (t.sqlite, q.sqlite)."""
    return {
        "DATABASE_URL": f"sqlite:///{folder}/t.sqlite",
        "QUEUE_URL": f"sqlite:///{folder}/q.sqlite",
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield on_sqlite(tmp_path)
        return
    with fresh_postgres() as url:
        yield {"DATABASE_URL": url, "QUEUE_URL": fresh_redis()}


def custodian(resource: Callable[[Seen], Answer]) -> Callable[[Seen], Answer]:
    """A scripted custodian: its token endpoint gives a client token, ``resource`` answers the
    rest."""

    def answer(seen: Seen) -> Answer:
        if seen.path == "/token":
            return Answer(200, {"Content-Type": "application/json"}, TOKEN)
        return resource(seen)

    return answer


@dataclass
class Served:
    app: Flask
    url: str  # the third party's base URL
    resource: str  # the custodian's resource base

    def query(self, fn: Callable[[Any], Any]) -> Any:
        with self.app.app_context():
            try:
                return fn(database.session())
            finally:
                database.close_session(None)

    def notify(self, *uris: str) -> Any:
        import requests

        body = espi.dumps(espi.BatchList(resources=list(uris)))
        return requests.post(f"{self.url}/espi/1_1/Notification", data=body, timeout=30)


@contextlib.contextmanager
def third_party(
    tmp_path: Path, storage: dict[str, str], custodian_url: str, **config: Any
) -> Iterator[Served]:
    """The app, its profile ``remote`` at ``custodian_url``, served on loopback (its embedded
    worker on unless ``EMBEDDED_WORKER=False``)."""
    resource = f"{custodian_url}{RESOURCE}"
    app = create_app({
        "TESTING": True, **storage, "DOCUMENTS": str(tmp_path / "documents"), "EMBEDDED_WORKER": True,
        "JOB_RETRY_DELAY": 0, "SIGNIN_LIMIT": "1000 per minute",
        "CUSTODIANS": {"remote": {
            "token_url": f"{custodian_url}/token", "resource_base": resource,
            "authorize_url": f"{custodian_url}/authorize",
            "client_id": "c", "client_secret": "s", "requests_per_second": 1000,
        }},
        **config,
    })  # fmt: skip
    with app.app_context():
        database.upgrade(app, MIGRATIONS)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Served(app, f"http://127.0.0.1:{server.server_port}", resource)
    finally:
        server.shutdown()
        server.server_close()
        consumer = queueing.of(app).consumer
        if consumer is not None:
            consumer.stop()
        app.extensions["appkit.engine"].dispose()


def add_connection(served, email: str) -> int:
    """A connection of the account to subscription 1 at the scripted custodian (access-1)."""

    def add(s):
        owner = s.scalar(select(tp.Account).where(tp.Account.email == email))
        owner = owner or create_account(email, PASSWORD)
        conn = tp.Connection(
            account_id=owner.id, profile="remote", status="active",
            subscription_uri=f"{served.resource}/Batch/Subscription/1",
            access_token=vault.seal("access-1"), refresh_token=vault.seal("refresh-1"),
            expires_at=int(time.time()) + 3600,
        )  # fmt: skip
        s.add(conn)
        s.commit()
        return conn.id

    with served.app.app_context():
        return served.query(add)


def wait(condition: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = condition()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out")
