"""Jobs on the queue (Huey: SQLite by default, Redis for several machines):

- ``fetch(notification_id)``: download an announced resource with the custodian's client
  (:mod:`espi.client`: the token its path calls for, streamed to disk, gzipped, kept for
  replay), then ingest it. A 202 to an announced URI is recorded as ``accepted``, not asked
  again: the custodian prepares the data once more and will announce it.
- ``sync(connection_id)``: ask for a subscription's new data (``Batch/Subscription`` with
  ``published-min`` from the last stored reading): 200 is ingested at once, 202 waits for the
  notification; a provider connection (Pelm, WattzOn, Griddy) fetches from the provider;
- ``bulk(profile)``: ask for the Bulk of every authorization of ours (client token);
- ``price(usage_point_id)``: price a usage point's readings on its rate plans (:mod:`.pricing`);
- ``upload(upload_id)``: check an uploaded file and ingest it (:mod:`.uploads`).

Retries are counted here and nowhere else (the clients never retry by themselves): an attempt
that meets an outage (5xx, a timeout, a refused connection), a 429, a provider still gathering
the data, or an error of ours, is tried again after ``JOB_RETRY_DELAY`` x 2^(n-1) seconds
(``PROVIDER_NOT_READY_DELAY`` x 2^(n-1) for a provider still gathering; a 429's Retry-After
instead; never more than ``JOB_MAX_DELAY``), at most ``JOB_RETRIES`` times. Refusals (401/403,
a URI outside the profile, another 4xx, a document that is not Green Button) fail at once.
A job's attempts are counted on its row (notification, connection, upload), claimed with a
compare-and-set so a job queued twice runs once per attempt; the final failure is recorded
there, with the reason and the number of attempts, and on the connection it concerns.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from huey.api import Huey
from sqlalchemy import select, update

import espi
from appkit import queue
from espi import scope as espi_scope
from espi.client import Accepted
from espi.providers.base import Credentials

from . import clients, db, documents, pricing, profiles, providers, uploads
from .documents import Kept, keeping, record
from .ingest import ingest

log = logging.getLogger(__name__)
SUBSCRIPTION = re.compile(r"/Batch/Subscription/([^/?]+)")
#: worth another attempt later
RETRYABLE = (espi.Unavailable, espi.RateLimited, espi.NotReady)
#: refusals that another attempt would not change
FINAL = (espi.ProviderError, ValueError, LookupError)


# --------------------------------------------------------------------------- the queue


def make_huey(app: Flask) -> Huey:
    huey = queue.make_huey(app, "thirdparty")
    tasks = {}
    for name in JOBS:
        tasks[name] = huey.task(name=name)(task_of(app, name))
        app.extensions[f"tp.{name}"] = functools.partial(enqueue, name)
    app.extensions["tp.huey"] = huey
    app.extensions["tp.tasks"] = tasks
    return huey


def task_of(app: Flask, name: str) -> Callable[..., None]:
    def task(key: Any, attempt: int = 0) -> None:
        with app.app_context():
            run(name, key, attempt)

    task.__name__ = name
    return task


def enqueue(name: str, key: Any, attempt: int | None = None, delay: float = 0) -> None:
    """Queue a job's next attempt (the one its row has not made yet), after ``delay`` s."""
    row = JOBS[name].row
    if attempt is None:
        attempt = 0
        if row is not None:
            attempt = db.session().scalar(select(row.attempts).where(row.id == key)) or 0
    task = current_app.extensions["tp.tasks"][name]
    if delay > 0:
        task.schedule(args=(key, attempt), delay=delay)
    else:
        task(key, attempt)


# --------------------------------------------------------------------------- retries


@dataclass(frozen=True)
class Job:
    work: Callable[[Any], None]
    #: the row that counts the job's attempts (None: they are counted in the task's arguments)
    row: Any
    #: record how an attempt went on the row: (key, text, final, retry_at)
    note: Callable[[Any, str, bool, int], None]


def run(name: str, key: Any, attempt: int) -> None:
    """One attempt of a job: claimed, done, and on failure tried again later or given up."""
    job = JOBS[name]
    if job.row is not None and not claim(job.row, key, attempt):
        log.info(
            "%s(%s): attempt %d is made already, or there is nothing to do", name, key, attempt + 1
        )
        return
    tries = attempt + 1
    try:
        job.work(key)
        return
    except RETRYABLE as err:
        failure, again = err, True
    except FINAL as err:
        failure, again = err, False
    except Exception as err:  # a fault of ours (the database busy, a bug): logged, tried again
        log.exception("%s(%s) failed", name, key)
        failure, again = err, True
    db.session().rollback()
    retries = current_app.config["JOB_RETRIES"]
    why = str(failure)[:1000] or type(failure).__name__
    if again and tries <= retries:
        delay = retry_wait(tries, failure)
        log.warning(
            "%s(%s): %s; attempt %d of %d, again in %g s", name, key, why, tries, retries + 1, delay
        )
        text = f"{why}; attempt {tries} of {retries + 1}, trying again in {delay:g} s"
        job.note(key, text, False, int(time.time() + delay))
        enqueue(name, key, tries, delay)
        return
    if again:
        why += f" (gave up after {tries} attempt{'s' if tries != 1 else ''})"
    log.error("%s(%s) failed: %s", name, key, why)
    job.note(key, why, True, 0)


def retry_wait(tries: int, err: BaseException) -> float:
    """Seconds to wait after the ``tries``-th failed attempt."""
    config = current_app.config
    if isinstance(err, espi.RateLimited) and err.retry_after is not None:
        return min(err.retry_after, config["JOB_MAX_DELAY"])
    first = (
        config["PROVIDER_NOT_READY_DELAY"]
        if isinstance(err, espi.NotReady)
        else config["JOB_RETRY_DELAY"]
    )
    return min(first * 2 ** (tries - 1), config["JOB_MAX_DELAY"])


def claim(row: Any, key: Any, attempt: int) -> bool:
    """Take attempt ``attempt`` + 1 of the job of a row, unless it is made already or the row
    is finished (a notification or upload not queued, a connection failed or revoked)."""
    s = db.session()
    if row is db.Connection:
        open_ = row.status.not_in(("revoked", "failed"))
    else:
        open_ = row.status == "queued"
    taken = s.execute(
        update(row)
        .where(row.id == key, row.attempts == attempt, open_)
        .values(attempts=row.attempts + 1)
    ).rowcount
    s.commit()
    return bool(taken)


def noted(model: Any) -> Callable[[Any, str, bool, int], None]:
    """How attempts are recorded on a row with a ``reason`` (a connection's sync): the last
    attempt's text; the final failure as status ``failed``."""

    def note(key: Any, text: str, final: bool, retry_at: int) -> None:
        s = db.session()
        row = s.get(model, key)
        if row is None:
            return
        row.reason = text
        if final:
            row.status = "failed"
        s.commit()

    return note


def note_fetch(key: int, text: str, final: bool, retry_at: int) -> None:
    """A download's attempts on its notification; its final failure on its connection too."""
    s = db.session()
    note = s.get(db.Notification, key)
    if note is None:
        return
    note.error, note.retry_at = text, retry_at
    if final:
        note.status = "failed"
        conn = s.get(db.Connection, note.connection_id) if note.connection_id else None
        if conn is not None and conn.status != "revoked":
            conn.status, conn.reason = "failed", f"downloading {note.uri}: {text}"
    s.commit()


def note_only(key: Any, text: str, final: bool, retry_at: int) -> None:
    if final:
        log.error("bulk request for %s failed: %s", key, text)


# --------------------------------------------------------------------------- the jobs


def connection_for(uri: str) -> db.Connection | None:
    """The connection, at the custodian a URI belongs to, whose subscription it names."""
    match = SUBSCRIPTION.search(uri)
    if match is None:
        return None
    names = [p.name for p in profiles.owners(uri)]
    mine = (db.Connection.profile.in_(names), db.Connection.subscription_uri.is_not(None))
    for conn in db.session().scalars(select(db.Connection).where(*mine)):
        own = SUBSCRIPTION.search(conn.subscription_uri or "")
        if own is not None and own.group(1) == match.group(1):
            return conn
    return None


def download(
    client: clients.Custodian,
    uri: str,
    creds: Credentials | None = None,
    params: dict[str, str] | None = None,
) -> Kept | Accepted:
    """A resource streamed to a kept gzipped file; Accepted when the custodian answered 202."""
    with client.get(uri, credentials=creds, params=params) as answer:
        if isinstance(answer, Accepted):
            return answer
        with keeping() as out:
            answer.save(out)
    return out.kept


def fetch(notification_id: int) -> None:
    s = db.session()
    note = s.get(db.Notification, notification_id)
    if note is None or note.status != "queued":
        return
    conn = connection_for(note.uri)
    if conn is not None and note.connection_id != conn.id:
        note.connection_id = conn.id
        s.commit()
    if conn is not None and conn.status == "revoked":
        raise espi.AuthError(f"{note.uri}: its connection was revoked", provider="custodian")
    doc = fetched_before(note)
    if doc is None:
        client = clients.custodian(conn.profile if conn is not None else note.profile)
        got = download(client, note.uri, clients.credentials(conn) if conn is not None else None)
        if isinstance(got, Accepted):
            note.status = "accepted"
            note.error = "the custodian answered 202: it will notify again when the data is ready"
            s.commit()
            return
        doc = record(client.profile.name, note.uri, conn, got)
    ingest(s, doc)
    note.status, note.error, note.retry_at = "done", "", 0
    if conn is not None:
        conn.status, conn.last_sync, conn.reason = "active", int(time.time()), ""
    s.commit()


def fetched_before(note: db.Notification) -> db.Document | None:
    """On a retry of a download (not a customer's Retry, which starts again): the document an
    earlier attempt fetched and kept but did not ingest (the database was busy, say), so it is
    not downloaded again."""
    if note.attempts <= 1:
        return None
    return db.session().scalar(
        select(db.Document)
        .where(
            db.Document.uri == note.uri,
            db.Document.status != "ingested",
            db.Document.fetched >= note.received,
        )
        .order_by(db.Document.id.desc())
    )


def sync(connection_id: int) -> None:
    """Ask for a subscription's new data (and the customer's information when shared).

    The first time, the whole subscription (``Batch/Subscription/{id}``: 200 now, or 202 and a
    notification); once its usage points are known, each one's new readings from the
    synchronous ``Batch/Subscription/{id}/UsagePoint/{id}`` with its own ``published-min``."""
    s = db.session()
    conn = s.get(db.Connection, connection_id)
    if conn is None or conn.status in ("revoked", "failed"):
        return
    if conn.profile in providers.SLUGS:
        providers.sync(conn)
    elif conn.subscription_uri:
        sync_subscription(conn)
    conn.attempts = 0
    s.commit()


def sync_subscription(conn: db.Connection) -> None:
    s = db.session()
    client = clients.custodian(conn.profile)
    creds = clients.credentials(conn)  # renewed tokens are stored as they come (clients)
    sub = conn.subscription_uri or ""
    if shares_customer_info(conn.scope):
        customer = SUBSCRIPTION.sub(r"/Batch/RetailCustomer/\1", sub)
        try:
            got_customer = download(client, customer, creds)
        except RETRYABLE:
            raise
        except espi.ProviderError as err:  # the custodian may not serve it: usage data still comes
            log.warning("connection %s: customer information: %s", conn.id, err)
        else:
            if not isinstance(got_customer, Accepted):
                ingest(s, record(client.profile.name, customer, conn, got_customer))
    known = s.scalars(select(db.UsagePoint).where(db.UsagePoint.connection_id == conn.id)).all()
    asks = [(f"{sub}/UsagePoint/{up.href.rsplit('/', 1)[-1]}",
             db.last_reading_start(db.UsagePoint.id == up.id)) for up in known]  # fmt: skip
    if not asks:
        asks = [(sub, db.last_reading_start(db.UsagePoint.connection_id == conn.id))]
    for uri, last in asks:
        got = download(client, uri, creds, client.profile.published(last))
        if isinstance(got, Accepted):
            log.info("connection %s: the custodian will notify when the data is ready", conn.id)
            continue
        ingest(s, record(client.profile.name, uri, conn, got))
        conn.status, conn.last_sync = "active", int(time.time())
    conn.reason = ""


def shares_customer_info(scope_text: str) -> bool:
    try:
        blocks = espi_scope.parse(scope_text).function_blocks
    except espi_scope.ScopeError:
        return False
    return any(54 <= n <= 60 for n in blocks)


def bulk(profile_name: str) -> None:
    """Ask for the Bulk of every authorization of ours at a custodian (client token); the
    custodian answers 202 and notifies."""
    client = clients.custodian(profile_name)
    uri = client.profile.bulk_uri()
    got = download(client, uri)
    if not isinstance(got, Accepted):
        ingest(db.session(), record(profile_name, uri, None, got))


JOBS: dict[str, Job] = {
    "fetch": Job(fetch, db.Notification, note_fetch),
    "sync": Job(sync, db.Connection, noted(db.Connection)),
    "bulk": Job(bulk, None, note_only),
    "price": Job(pricing.price_usage_point, None, pricing.note),
    "upload": Job(uploads.check_and_ingest, db.Upload, uploads.note),
}


# --------------------------------------------------------------------------- recovery


def recover() -> int:
    """Finish what a stopped worker left (run when a worker starts; jobs are idempotent):
    orphan ``.partial`` files are removed; documents fetched but not ingested (their
    transaction never committed) are ingested and their notifications marked done;
    notifications and uploads still queued get their next attempt (at the time it was due);
    those whose attempts are spent are failed. Nothing failed or finished is queued again."""
    s = db.session()
    documents.remove_orphans()
    docs = s.scalars(select(db.Document).where(db.Document.status == "fetched")).all()
    for doc in docs:
        for note in s.scalars(select(db.Notification).where(db.Notification.uri == doc.uri)):
            note.status, note.error = "done", ""  # committed with the readings, or not at all
        ingest(s, doc)
    spent = current_app.config["JOB_RETRIES"] + 1
    queued = 0
    for name, model in (("fetch", db.Notification), ("upload", db.Upload)):
        for row in s.scalars(select(model).where(model.status == "queued")).all():
            if row.attempts >= spent:
                JOBS[name].note(
                    row.id, f"the worker stopped (gave up after {row.attempts} attempts)", True, 0
                )
                continue
            due = getattr(row, "retry_at", 0) - time.time()
            enqueue(name, row.id, row.attempts, max(0.0, due))
            queued += 1
    if queued or docs:
        log.info("recovered %d document(s) and requeued %d job(s)", len(docs), queued)
    return queued + len(docs)


def replay(document_id: int, full: bool = False) -> int:
    """Ingest a kept document again (the same rows result)."""
    doc = db.session().get(db.Document, document_id)
    if doc is None:
        raise KeyError(f"no document {document_id}")
    return ingest(db.session(), doc, full=full)
