"""A worker killed in the middle of a large document: restarted, it finishes the document with
no duplicate and no missing reading."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from appkit import database
from tests.conftest import fresh_postgres, fresh_redis
from thirdparty_app import MIGRATIONS, create_app
from thirdparty_app import db as tp
from thirdparty_app.accounts import create_account
from thirdparty_app.jobs import enqueue

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import stub  # noqa: E402
from feeds import write_feed  # noqa: E402

BULK = f"{stub.RESOURCE}/Batch/Bulk/77"


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
    server = stub.serve({BULK: document})
    base = server.base
    config = {
        **storage, "DOCUMENTS": str(tmp_path / "documents"), "SECRET_KEY": "test", "TOKEN_KEY": "0" * 43 + "=",
        "BASE_URL": "http://127.0.0.1:9",
    }  # fmt: skip
    env = stub.environment(config, base)
    app = create_app({"TESTING": True, **config, "CUSTODIANS": {"remote": stub.profile(base)}})
    with app.app_context():
        database.upgrade(app, MIGRATIONS)
        s = database.session()
        owner = create_account("bulk@example.com", "correct horse battery staple")
        s.add(tp.Connection(account_id=owner.id, profile="remote", status="active",
                            subscription_uri=f"{base}{stub.RESOURCE}/Batch/Subscription/1"))  # fmt: skip
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

    first = stub.worker(env, threads=2)
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

    second = stub.worker(env, threads=2)
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
        server.close()
        app.extensions["appkit.engine"].dispose()
