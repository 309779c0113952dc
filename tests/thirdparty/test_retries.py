"""Bounded, visible retries: a custodian that answers 503 forever is asked exactly the configured
number of times and the failure is recorded on its notification and shown with a Retry
action (a forged notification cannot fail a connection); one that answers 202 forever is asked once per notification; ``recover()`` requeues only
unfinished work. Against scripted custodians, on SQLite and on PostgreSQL with Redis."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

import espi
from tests.scripted import Answer, Scripted, Seen
from tests.thirdparty.apps import RESOURCE, add_connection, custodian, storage, third_party, wait
from tests.thirdparty.browsing import PASSWORD, Person
from thirdparty_app import db as tp
from thirdparty_app import queueing

__all__ = ["storage"]
RETRIES = 3  # so 4 attempts in all


def small_feed(resource: str, sid: int = 1) -> bytes:
    up = espi.UsagePoint(
        links=[espi.Link(rel="self", href=f"{resource}/Subscription/{sid}/UsagePoint/1")],
        service_category=espi.ServiceCategory(kind=espi.ServiceKind.ELECTRICITY),
    )
    rt = espi.builder.reading_type(espi.UnitSymbolKind.WH, interval_length=3600)
    espi.builder.meter_reading(up, rt, [(1_700_000_000 + 3600 * i, 3600, 500) for i in range(24)])
    return espi.dumps(espi.builder.feed(up))


def idle(served) -> bool:
    huey = queueing.of(served.app).huey
    return huey.pending_count() == 0 and huey.scheduled_count() == 0


def settled(served, note_id: int, status: str) -> bool:
    """The notification reached ``status`` and the queue holds nothing more."""
    done = served.query(lambda s: s.get(tp.Notification, note_id).status) == status
    if done and idle(served):
        time.sleep(0.3)  # a job that was running when the queue emptied has finished
        return idle(served)
    return False


def note_of(served, uri: str) -> tp.Notification:
    return served.query(
        lambda s: s.scalar(select(tp.Notification).where(tp.Notification.uri == uri))
    )


def test_a_custodian_answering_503_forever_is_asked_exactly_the_configured_times(tmp_path, storage):
    with (
        Scripted(custodian(lambda seen: Answer(503, body=b"busy"))) as remote,
        third_party(tmp_path, storage, remote.url, JOB_RETRIES=RETRIES) as served,
    ):
        uri = f"{served.resource}/Batch/Bulk/1"
        assert served.notify(uri).status_code == 200
        note = wait(lambda: note_of(served, uri))
        wait(lambda: settled(served, note.id, "failed"))
        assert len(remote.requests("GET", f"{RESOURCE}/Batch/Bulk/1")) == RETRIES + 1
        note = note_of(served, uri)
        assert note.attempts == RETRIES + 1
        assert "503" in note.error and f"after {RETRIES + 1} attempts" in note.error
        # a worker that starts again does not take up a failed notification
        with served.app.app_context():
            from thirdparty_app import jobs

            assert jobs.recover() == 0
        time.sleep(0.5)
        assert len(remote.requests("GET", f"{RESOURCE}/Batch/Bulk/1")) == RETRIES + 1


def test_a_custodian_answering_202_forever_is_asked_once_per_notification(tmp_path, storage):
    """A 202 to a notified URI means the custodian starts preparing it again and will notify
    again: asking again would multiply the work (the issue's 7 x 202 and 6 Bulk downloads)."""
    with (
        Scripted(custodian(lambda seen: Answer(202))) as remote,
        third_party(tmp_path, storage, remote.url, JOB_RETRIES=RETRIES) as served,
    ):
        uri = f"{served.resource}/Batch/Bulk/1?correlationID=7"
        assert served.notify(uri).status_code == 200
        note = wait(lambda: note_of(served, uri))
        wait(lambda: settled(served, note.id, "accepted"))
        assert len(remote.requests("GET", f"{RESOURCE}/Batch/Bulk/1")) == 1
        assert note_of(served, uri).attempts == 1
        with served.app.app_context():
            from thirdparty_app import jobs

            jobs.recover()
        time.sleep(0.5)
        assert len(remote.requests("GET", f"{RESOURCE}/Batch/Bulk/1")) == 1


def test_the_wait_between_attempts(tmp_path):
    """Exponential from JOB_RETRY_DELAY; a 429's Retry-After wins; never above JOB_MAX_DELAY."""
    from thirdparty_app import create_app, jobs

    app = create_app({
        "TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/t.sqlite", "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite",
        "JOB_RETRY_DELAY": 2, "JOB_MAX_DELAY": 600,
    })  # fmt: skip
    with app.app_context():
        down = espi.Unavailable("down", provider="custodian", status=503)
        assert [jobs.retry_wait(n, down) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
        assert jobs.retry_wait(12, down) == 600
        limited = espi.RateLimited("slow down", provider="custodian", status=429, retry_after=7)
        assert jobs.retry_wait(1, limited) == 7 and jobs.retry_wait(5, limited) == 7
        later = espi.RateLimited("tomorrow", provider="custodian", status=429, retry_after=86400)
        assert jobs.retry_wait(1, later) == 600


def test_a_failed_download_shows_on_the_authorizations_page_with_a_retry(tmp_path, storage):
    """The subscription's download fails after its attempts: the notification says why (the
    connection is left as it was: see the forged notification's test); the customer (and an
    operator) retry it with a POST form; another customer cannot."""
    state = {"up": False}

    def subscription(seen: Seen) -> Answer:
        if not state["up"]:
            return Answer(503, body=b"down for maintenance")
        if seen.headers.get("Authorization") != "Bearer access-1":
            return Answer(401)
        return Answer(
            200, {"Content-Type": "application/atom+xml"}, small_feed(remote.url + RESOURCE)
        )

    with (
        Scripted(custodian(subscription)) as remote,
        third_party(tmp_path, storage, remote.url, JOB_RETRIES=RETRIES) as served,
    ):
        customer = Person.sign_up(served.url)
        conn_id = add_connection(served, customer.email)
        with served.app.app_context():
            from thirdparty_app.accounts import create_account

            create_account("ops@example.com", PASSWORD, role="operator")
        uri = f"{served.resource}/Batch/Subscription/1?correlationID=42"
        assert served.notify(uri).status_code == 200
        note = wait(lambda: note_of(served, uri))
        wait(lambda: settled(served, note.id, "failed"))
        assert f"after {RETRIES + 1} attempts" in note_of(served, uri).error
        assert served.query(lambda s: s.get(tp.Connection, conn_id).status) == "active"
        assert len(remote.requests("GET", f"{RESOURCE}/Batch/Subscription/1")) == RETRIES + 1

        page = customer.get(f"{served.url}/connections", timeout=30).text
        why = re.findall(r'data-label="Why">([^<]*)<', page)
        assert why and "press Retry" in why[0] and "503" not in why[0]  # the 503 is for operators
        form = re.search(rf'<form method="post" action="(/notifications/{note.id}/retry)"', page)
        assert form, page
        other = Person.sign_up(served.url)
        assert other.post(f"{served.url}{form.group(1)}", timeout=30).status_code == 404
        assert Person(served.url).post(f"{served.url}{form.group(1)}", timeout=30).status_code in (
            400,
            401,
        )

        state["up"] = True
        done = customer.post(f"{served.url}{form.group(1)}", timeout=30)
        assert done.status_code == 200 and "again" in done.text
        wait(lambda: settled(served, note.id, "done"))
        conn = served.query(lambda s: s.get(tp.Connection, conn_id))
        assert conn.status == "active" and conn.reason == ""
        readings = served.query(
            lambda s: s.scalar(select(tp.Document.readings).where(tp.Document.uri == uri))
        )
        assert readings == 24

        # an operator sees failures of every customer and may retry them too
        state["up"] = False
        served.query(
            lambda s: (
                s.execute(tp.Notification.__table__.update().values(status="queued", attempts=0)),
                s.commit(),
            )
        )
        with served.app.app_context():
            from thirdparty_app import jobs

            jobs.enqueue("fetch", note.id)
        wait(lambda: settled(served, note.id, "failed"))
        staff = Person.sign_in(served.url, "ops@example.com")
        page = staff.get(f"{served.url}/connections", timeout=30).text
        assert "503" in page and f"after {RETRIES + 1} attempts" in page
        assert f'action="/notifications/{note.id}/retry"' in page
        state["up"] = True
        assert (
            staff.post(f"{served.url}/notifications/{note.id}/retry", timeout=30).status_code == 200
        )
        wait(lambda: settled(served, note.id, "done"))


def test_a_forged_notification_fails_its_own_download_only(tmp_path, storage):
    """Anyone can post a notification (a custodian's are not signed). One naming a customer's
    subscription with a correlationID the custodian does not know is refused there (403): that
    fails its own download, shown with its own Retry; the connection stays as it was, and a
    failed connection's Retry asks for the subscription's data, never the refused URI again."""
    forged = f"{RESOURCE}/Batch/Subscription/1?correlationID=forged"

    def answer(seen: Seen) -> Answer:
        if seen.path == forged:
            return Answer(403, {"Content-Type": "application/json"}, b'{"error":"access_denied"}')
        if seen.path.startswith(f"{RESOURCE}/Batch/Subscription/1"):
            feed = small_feed(remote.url + RESOURCE)
            return Answer(200, {"Content-Type": "application/atom+xml"}, feed)
        return Answer(404)

    with (
        Scripted(custodian(answer)) as remote,
        third_party(tmp_path, storage, remote.url, JOB_RETRIES=RETRIES) as served,
    ):
        customer = Person.sign_up(served.url)
        conn_id = add_connection(served, customer.email)
        assert Person(served.url).post(f"{served.url}/espi/1_1/Notification", timeout=30,
                                       data=espi.dumps(espi.BatchList(resources=[remote.url + forged]))
                                       ).status_code == 200  # fmt: skip
        note = wait(lambda: note_of(served, remote.url + forged))
        wait(lambda: settled(served, note.id, "failed"))
        assert "403" in note_of(served, remote.url + forged).error
        conn = served.query(lambda s: s.get(tp.Connection, conn_id))
        assert (conn.status, conn.reason) == ("active", "")
        assert len(remote.requests("GET", forged)) == 1
        page = customer.get(f"{served.url}/connections", timeout=30).text
        assert f'action="/notifications/{note.id}/retry"' in page
        assert f'action="/connections/{conn_id}/retry"' not in page  # nothing wrong with it

        # a connection failed by its own sync: Retry syncs it again
        served.query(
            lambda s: (s.get(tp.Connection, conn_id).__setattr__("status", "failed"), s.commit())
        )
        page = customer.get(f"{served.url}/connections", timeout=30).text
        assert f'action="/connections/{conn_id}/retry"' in page
        assert (
            customer.post(f"{served.url}/connections/{conn_id}/retry", timeout=30).status_code
            == 200
        )
        wait(lambda: served.query(lambda s: s.get(tp.Connection, conn_id).status) == "active")
        asked = [seen.path for seen in remote.requests("GET", f"{RESOURCE}/Batch/Subscription/1")]
        assert asked.count(forged) == 1 and len(asked) == 2, asked
        assert served.query(lambda s: s.get(tp.Notification, note.id).status) == "failed"


def test_recover_requeues_only_unfinished_work(tmp_path, storage):
    with (
        Scripted(custodian(lambda seen: Answer(503))) as remote,
        third_party(
            tmp_path, storage, remote.url, JOB_RETRIES=RETRIES, EMBEDDED_WORKER=False
        ) as served,
    ):
        base = f"{served.resource}/Batch/Bulk/1?correlationID="
        rows = {
            "done": tp.Notification(uri=base + "1", profile="remote", status="done", attempts=1),
            "failed": tp.Notification(
                uri=base + "2", profile="remote", status="failed", attempts=4
            ),
            "unfinished": tp.Notification(
                uri=base + "3", profile="remote", status="queued", attempts=1
            ),
            "spent": tp.Notification(
                uri=base + "4", profile="remote", status="queued", attempts=RETRIES + 1
            ),
        }

        def add(s):
            s.add_all(rows.values())
            s.commit()
            return {k: v.id for k, v in rows.items()}

        ids = served.query(add)
        with served.app.app_context():
            from thirdparty_app import jobs

            assert jobs.recover() == 1
        huey = queueing.of(served.app).huey
        queued = [t.args for t in huey.pending()] + [t.args for t in huey.scheduled()]
        assert queued == [(ids["unfinished"], 1)]
        spent = served.query(lambda s: s.get(tp.Notification, ids["spent"]))
        assert spent.status == "failed" and "after 4 attempts" in spent.error


@pytest.mark.parametrize("code", [429, 503])
def test_the_client_does_not_retry_inside_a_job(tmp_path, code):
    """One request per attempt: the client's own retries would multiply the job's."""
    with (
        Scripted(custodian(lambda seen: Answer(code, {"Retry-After": "0"}))) as remote,
        third_party(tmp_path, {"DATABASE_URL": f"sqlite:///{tmp_path}/t.sqlite", "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite"},
                    remote.url, JOB_RETRIES=1) as served,
    ):  # fmt: skip
        uri = f"{served.resource}/Batch/Bulk/1"
        served.notify(uri)
        note = wait(lambda: note_of(served, uri))
        wait(lambda: settled(served, note.id, "failed"))
        assert len(remote.requests("GET", f"{RESOURCE}/Batch/Bulk/1")) == 2


def test_a_retry_ingests_the_document_an_earlier_attempt_kept(tmp_path, storage):
    """An attempt that downloaded and kept the document but failed to store it (the database
    was busy, say): the next attempt ingests the kept document, the custodian is not asked
    again."""
    from thirdparty_app import jobs
    from thirdparty_app.documents import keeping, record

    with (
        Scripted(custodian(lambda seen: Answer(503))) as remote,
        third_party(tmp_path, storage, remote.url, EMBEDDED_WORKER=False) as served,
    ):
        conn_id = add_connection(served, "kept@example.com")
        uri = f"{served.resource}/Batch/Subscription/1?correlationID=3"
        with served.app.app_context():
            from appkit import database

            s = database.session()
            note = tp.Notification(uri=uri, profile="remote", attempts=1, connection_id=conn_id)
            s.add(note)
            s.commit()
            with keeping() as out:
                out.write(small_feed(served.resource))
            doc = record("remote", uri, s.get(tp.Connection, conn_id), out.kept)
            doc.status = "failed"  # as the failed attempt's ingestion left it
            s.commit()
            jobs.run("fetch", note.id, 1)
            database.close_session(None)
        assert remote.requests("GET") == []
        assert note_of(served, uri).status == "done" and note_of(served, uri).attempts == 2
        assert served.query(lambda s: s.get(tp.Document, doc.id).readings) == 24


def test_a_custodian_redirecting_elsewhere_gets_nothing_fetched_from_there(tmp_path):
    """The issue: an allowed base answering 302 to another host was followed and the foreign
    feed stored. The download fails at once (a refusal, not retried) and the other host is
    never asked."""
    sqlite = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/t.sqlite",
        "QUEUE_URL": f"sqlite:///{tmp_path}/q.sqlite",
    }
    with (
        Scripted(lambda seen: Answer(200, {"Content-Type": "application/atom+xml"}, small_feed("http://x"))) as foreign,
        Scripted(custodian(lambda seen: Answer(302, {"Location": f"{foreign.url}/feed"}))) as remote,
        third_party(tmp_path, sqlite, remote.url, JOB_RETRIES=RETRIES) as served,
    ):  # fmt: skip
        uri = f"{served.resource}/Batch/Bulk/1"
        assert served.notify(uri).status_code == 200
        note = wait(lambda: note_of(served, uri))
        wait(lambda: settled(served, note.id, "failed"))
        failed = note_of(served, uri)
        assert failed.attempts == 1 and "redirected" in failed.error, failed.error
        assert (
            foreign.seen == [] and served.query(lambda s: s.scalar(select(tp.Document.id))) is None
        )
