"""Scale-out: several queue worker processes (Redis queue, PostgreSQL) ingest overlapping
documents at once — Bulks of several customers, each customer's subscription, one usage point
of a subscription again, one content twice — every reading is stored exactly once, under its
own customer's connection; nothing deadlocks; no job is lost."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from appkit import database
from tests.conftest import fresh_postgres, fresh_redis
from thirdparty_app import MIGRATIONS, create_app
from thirdparty_app import db as tp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import stub  # noqa: E402
from feeds import write_feed  # noqa: E402

SUBSCRIPTION = re.compile(r"/Subscription/(\d+)")
CUSTOMERS = range(1, 7)
METERS, DAYS = 2, 15  # 2,880 readings a customer
#: path -> (customers, meters): Bulks that overlap, one in the reverse order (locks taken in
#: document order would deadlock), one the same content as another; each customer's
#: subscription; a usage point of two subscriptions again
DOCUMENTS = {
    **{f"Batch/Bulk/{n}": (subs, METERS) for n, subs in
       enumerate([[1, 2, 3, 4], [3, 4, 5, 6], [6, 5, 4, 3, 2, 1], list(CUSTOMERS), [2]], 1)},
    **{f"Batch/Subscription/{sub}": ([sub], METERS) for sub in CUSTOMERS},
    **{f"Batch/Subscription/{sub}/UsagePoint/1": ([sub], 1) for sub in (3, 4)},
}  # fmt: skip
SAME_AS = {"Batch/Bulk/9": "Batch/Bulk/4"}


def test_workers_ingest_overlapping_documents_once_each(tmp_path):
    documents: dict[str, Path] = {}
    server = stub.serve(documents)
    for n, (name, (subs, meters)) in enumerate(DOCUMENTS.items()):
        path = documents[f"{stub.RESOURCE}/{name}"] = tmp_path / f"doc{n}.xml"
        write_feed(path, meters=meters, days=DAYS, subscriptions=subs,
                   base=server.base + stub.RESOURCE)  # fmt: skip
    for name, same in SAME_AS.items():
        documents[f"{stub.RESOURCE}/{name}"] = documents[f"{stub.RESOURCE}/{same}"]
    with fresh_postgres() as url:
        config = {"DATABASE_URL": url, "QUEUE_URL": fresh_redis(), "SECRET_KEY": "test",
                  "TOKEN_KEY": "0" * 43 + "=", "DOCUMENTS": str(tmp_path / "kept")}  # fmt: skip
        app = create_app(
            {"TESTING": True, **config, "CUSTODIANS": {"remote": stub.profile(server.base)}}
        )
        env = stub.environment(config, server.base)
        with app.app_context():
            database.upgrade(app, MIGRATIONS)
            stub.customers(server.base, CUSTOMERS)
        logs = [open(tmp_path / f"worker{n}.log", "wb") for n in range(3)]  # noqa: SIM115
        workers = [stub.worker(env, threads=2, log=log) for log in logs]
        try:
            stub.started(tmp_path.glob("worker*.log"), len(workers))
            with app.app_context():  # the notifications arrive while the workers run
                stub.notify(server.base, list(documents))
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and not settled(app):
                time.sleep(0.2)
            assert settled(app), "the workers did not finish every document"
            check(app)
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(30)
            for log in logs:
                log.close()
            server.close()
            app.extensions["appkit.engine"].dispose()
    output = b"".join((tmp_path / f"worker{n}.log").read_bytes() for n in range(3)).decode()
    assert "Traceback" not in output, output[-3000:]


def settled(app) -> bool:
    with app.app_context():
        s = database.session()
        notes = s.execute(
            select(tp.Notification.status, func.count()).group_by(tp.Notification.status)
        ).all()
        database.close_session(None)
    return dict(notes) == {"done": len(DOCUMENTS) + len(SAME_AS)}


def check(app) -> None:
    expected = len(CUSTOMERS) * METERS * DAYS * 96
    with app.app_context():
        s = database.session()
        docs = s.execute(select(tp.Document.status, tp.Document.readings, tp.Document.uri)).all()
        assert sorted(d.status for d in docs) == ["ingested"] * (len(DOCUMENTS) + len(SAME_AS)), (
            docs
        )
        assert s.scalar(select(func.count()).select_from(tp.Reading)) == expected
        assert s.scalar(select(func.count()).select_from(tp.Reading).where(tp.Reading.seq > 0)) == 0
        # every usage point filed under the connection of the subscription its href names
        placed = s.execute(
            select(tp.UsagePoint.href, tp.Connection.subscription_uri).join(tp.Connection)
        ).all()
        assert len(placed) == len(CUSTOMERS) * METERS
        assert all(
            SUBSCRIPTION.search(href)[1] == SUBSCRIPTION.search(sub)[1] for href, sub in placed
        )
        database.close_session(None)
