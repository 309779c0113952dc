"""A worker killed in the middle of a large document: restarted, it finishes the document with
no duplicate and no missing reading."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from appkit import database
from tests.conftest import fresh_postgres, fresh_redis
from thirdparty_app import MIGRATIONS, create_app
from thirdparty_app import db as tp
from thirdparty_app.accounts import create_account
from thirdparty_app.jobs import enqueue

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from feeds import write_feed  # noqa: E402

BULK = "/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/77"


def remote_custodian(document: Path):
    """The least of a custodian: a token endpoint and one large Bulk document."""

    @Request.application
    def app(request: Request) -> Response:
        if request.path == "/token" and request.method == "POST":
            return Response(
                '{"client_access_token": "t0k3n", "expires_in": 3600}', mimetype="application/json"
            )
        if request.path == BULK and request.headers.get("Authorization") == "Bearer t0k3n":
            return Response(document.read_bytes(), mimetype="application/atom+xml")
        return Response("no", status=404)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "thirdparty_app", "worker"], env=env, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture(params=["sqlite + sqlite queue", "postgresql + redis queue"])
def storage(request, tmp_path):
    if request.param.startswith("sqlite"):
        yield {
            "DATABASE_URL": f"sqlite:///{tmp_path}/tp.sqlite",
            "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite",
        }
        return
    with fresh_postgres() as url:
        yield {"DATABASE_URL": url, "QUEUE_URL": fresh_redis()}


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_worker_finishes_the_document_after_a_restart(tmp_path, storage):
    document = tmp_path / "bulk.xml"
    expected = write_feed(document, meters=6, days=365)  # 210,240 readings, about 45 MB
    server = remote_custodian(document)
    base = f"http://127.0.0.1:{server.server_port}"
    config = {
        **storage, "DOCUMENTS": str(tmp_path / "documents"), "SECRET_KEY": "test", "TOKEN_KEY": "0" * 43 + "=",
        "BASE_URL": "http://127.0.0.1:9",
    }  # fmt: skip
    custodian = {"token_url": f"{base}/token", "resource_base": f"{base}/GreenButtonConnect/espi/1_1/resource",
                 "client_id": "c", "client_secret": "s", "requests_per_second": "100"}  # fmt: skip
    env = {**os.environ, **{f"THIRDPARTY_{k}": v for k, v in config.items()},
           **{f"THIRDPARTY_CUSTODIANS__remote__{k}": v for k, v in custodian.items()}}  # fmt: skip
    app = create_app({"TESTING": True, **config, "CUSTODIANS": {"remote": custodian}})
    with app.app_context():
        database.upgrade(app, MIGRATIONS)
        s = database.session()
        owner = create_account("bulk@example.com", "correct horse battery staple")
        s.add(tp.Connection(account_id=owner.id, profile="remote", status="active",
                            subscription_uri=f"{base}/GreenButtonConnect/espi/1_1/resource/Batch/Subscription/1"))  # fmt: skip
        note = tp.Notification(uri=f"{base}{BULK}", profile="remote")
        s.add(note)
        s.commit()
        enqueue("fetch", note.id)

    def state():
        with app.app_context():
            s = database.session()
            doc = s.scalar(select(tp.Document))
            out = (
                doc.status if doc else None,
                s.scalar(select(func.count()).select_from(tp.Reading)),
            )
            database.close_session(None)
            return out

    first = worker(env)
    try:
        deadline = time.monotonic() + 120
        while state()[0] != "fetched" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert state()[0] == "fetched", "the download did not finish"
        first.send_signal(signal.SIGKILL)  # in the middle of ingesting the document
        first.wait(10)
        status, stored = state()
        assert status == "fetched" and stored < expected
    finally:
        first.kill()

    second = worker(env)
    try:
        deadline = time.monotonic() + 180
        while state()[0] != "ingested" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state() == ("ingested", expected)
        with app.app_context():
            s = database.session()
            distinct = s.execute(
                select(func.count()).select_from(
                    select(tp.Reading.meter_reading_id, tp.Reading.start).distinct().subquery()
                )
            ).scalar()
            assert distinct == expected
            assert s.scalar(select(tp.Notification.status)) == "done"
            database.close_session(None)
    finally:
        second.terminate()
        second.wait(10)
        server.shutdown()
        server.server_close()
        app.extensions["appkit.engine"].dispose()
