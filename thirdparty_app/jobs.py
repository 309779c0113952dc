"""The app's jobs (queued through :mod:`.queueing`, which counts their attempts):

- ``fetch(notification_id)``: download an announced resource with the custodian's client
  (:mod:`espi.client`: the token its path calls for, streamed to disk, gzipped, kept for
  replay), then ingest it. A 202 to an announced URI is recorded as ``accepted``, not asked
  again: the custodian prepares the data once more and will announce it.
- ``sync(connection_id)``: a custodian's subscription asks for its new data
  (``Batch/Subscription`` with ``published-min`` from the last stored reading): 200 is
  ingested at once, 202 waits for the notification; a provider connection fetches from its
  provider (:func:`.providers.sync`, whatever provider is registered);
- ``ingest(document_id)``: ingest a kept document a stopped worker left (:func:`recover`);
- ``bulk(profile)``: ask for the Bulk of every authorization of ours (client token);
- ``price(usage_point_id)``: price a usage point's readings on its rate plans (registered by
  :mod:`.pricing`);
- ``upload(upload_id)``: check an uploaded file and ingest it (registered by :mod:`.uploads`);
- every few minutes (and when a worker starts): :func:`cleanup` removes connects whose answer
  never came.

A job's final failure is recorded on its row (a sync's on its connection; a download's on its
notification only: see :func:`note_fetch`).
"""

from __future__ import annotations

import logging
import re
import time
from typing import cast

from flask import current_app
from sqlalchemy import select

import espi
from espi import scope as espi_scope
from espi.client import Accepted
from espi.providers.base import Credentials

from . import clients, db, documents, erase, profiles, providers, queueing
from .db import ConnectionState, DocumentState, NotificationState
from .documents import Kept, keeping, record
from .ingest import ingest
from .queueing import RETRYABLE, enqueue, retry_wait, run

__all__ = ["enqueue", "recover", "replay", "retry_wait", "run", "sync"]

log = logging.getLogger(__name__)
SUBSCRIPTION = re.compile(r"/Batch/Subscription/([^/?]+)")
#: connections whose data is asked for
SYNCING = (ConnectionState.WAITING, ConnectionState.ACTIVE)


# --------------------------------------------------------------------------- attempts


def note_fetch(key: int, text: str, final: bool, retry_at: int) -> None:
    """A download's attempts, on its notification only: anyone can post a notification (a
    custodian's are not signed), so a refused or failing download never changes the state of
    the connection it names; the connection's own sync says how that stands."""
    s = db.session()
    note = s.get(db.Notification, key)
    if note is None:
        return
    note.error, note.retry_at = text, retry_at
    if final:
        note.status = NotificationState.FAILED
    s.commit()


# --------------------------------------------------------------------------- the jobs


def connection_for(uri: str) -> db.Connection | None:
    """The connection, at the custodian a URI belongs to, whose subscription it names: an
    active one before any other; None when none does. Several in the same (best) state are a
    LookupError: the document is not filed under one of them by chance."""
    match = SUBSCRIPTION.search(uri)
    if match is None:
        return None
    names = [p.name for p in profiles.owners(uri)]
    mine = (db.Connection.profile.in_(names), db.Connection.subscription_uri.is_not(None))
    found = []
    for conn in db.session().scalars(select(db.Connection).where(*mine)):
        own = SUBSCRIPTION.search(conn.subscription_uri or "")
        if own is not None and own.group(1) == match.group(1):
            found.append(conn)
    active = [c for c in found if c.status == ConnectionState.ACTIVE]
    found = active or found
    if len(found) > 1:
        ids = ", ".join(str(c.id) for c in found)
        raise LookupError(f"{uri}: connections {ids} all name its subscription; none is taken")
    return found[0] if found else None


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
    if note is None or note.status != NotificationState.QUEUED:
        return
    conn = connection_for(note.uri)
    if conn is not None and note.connection_id != conn.id:
        note.connection_id = conn.id
        s.commit()
    if conn is not None and conn.status == ConnectionState.REVOKED:
        raise espi.AuthError(f"{note.uri}: its connection was revoked", provider="custodian")
    doc = fetched_before(note)
    if doc is None:
        client = clients.custodian(conn.profile if conn is not None else note.profile)
        got = download(client, note.uri, clients.credentials(conn) if conn is not None else None)
        if isinstance(got, Accepted):
            note.status = NotificationState.ACCEPTED
            note.error = "the custodian answered 202: it will notify again when the data is ready"
            s.commit()
            return
        doc = record(client.profile.name, note.uri, conn, got)
    ingest(s, doc)
    note.status, note.error, note.retry_at = NotificationState.DONE, "", 0
    if conn is not None:
        conn.status, conn.last_sync, conn.reason = ConnectionState.ACTIVE, int(time.time()), ""
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
            db.Document.status != DocumentState.INGESTED,
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
    if conn is None or conn.status not in SYNCING or conn.profile == db.UPLOAD:
        return
    if not providers.source(conn.profile).custodian:
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
        conn.status, conn.last_sync = ConnectionState.ACTIVE, int(time.time())
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


def ingest_document(document_id: int) -> None:
    """Ingest a kept document that was not (a stopped worker's): the notifications that
    announced it are done with it."""
    s = db.session()
    doc = s.get(db.Document, document_id)
    if doc is None or doc.status == DocumentState.INGESTED:
        return
    ingest(s, doc)
    for note in s.scalars(
        select(db.Notification).where(
            db.Notification.uri == doc.uri, db.Notification.status == NotificationState.QUEUED
        )
    ):
        note.status, note.error, note.retry_at = NotificationState.DONE, "", 0
    s.commit()


def cleanup() -> int:
    """Remove the connects started more than ``CONNECT_EXPIRY`` seconds ago whose answer never
    came (the customer left the provider's or custodian's page); how many. Nothing was shared
    by them: no data, no credentials."""
    s = db.session()
    cutoff = int(time.time()) - int(current_app.config["CONNECT_EXPIRY"])
    stale = s.scalars(
        select(db.Connection).where(
            db.Connection.status == ConnectionState.CONNECTING, db.Connection.created < cutoff
        )
    ).all()
    files: set[str] = set()
    for conn in stale:
        files |= erase.connection(conn)
    s.commit()
    erase.remove_files(files)
    if stale:
        log.info("removed %d connect(s) never finished", len(stale))
    return len(stale)


queueing.register(
    "fetch",
    fetch,
    row=db.Notification,
    open=(NotificationState.QUEUED,),
    note=note_fetch,
)
queueing.register(
    "sync",
    sync,
    row=db.Connection,
    open=SYNCING,
    note=queueing.noted(db.Connection, ConnectionState.FAILED),
)
queueing.register("ingest", ingest_document)
queueing.register("bulk", bulk)
queueing.every(10, "cleanup", cleanup)


# --------------------------------------------------------------------------- recovery


def recover() -> int:
    """Finish what a stopped worker left (run when a worker starts; jobs are idempotent):
    orphan ``.partial`` files are removed; documents fetched but not ingested (their
    transaction never committed) are queued for ingestion, which finishes their notifications;
    other notifications and uploads still queued get their next attempt (at the time it was
    due); those whose attempts are spent are failed. Nothing failed or finished is queued
    again. Connects whose answer never came are cleaned up (:func:`cleanup`)."""
    s = db.session()
    documents.remove_orphans()
    cleanup()
    docs = s.scalars(select(db.Document).where(db.Document.status == DocumentState.FETCHED)).all()
    for doc in docs:
        enqueue("ingest", doc.id)
    kept = {doc.uri for doc in docs}
    spent = current_app.config["JOB_RETRIES"] + 1
    queued = 0
    for name, model, waiting in (
        ("fetch", db.Notification, NotificationState.QUEUED),
        ("upload", db.Upload, db.UploadState.QUEUED),
    ):
        rows = s.scalars(select(model).where(model.status == waiting)).all()
        for row in cast("list[db.Notification | db.Upload]", rows):
            if getattr(row, "uri", None) in kept:
                continue  # finished by the ingestion of its kept document
            if row.attempts >= spent:
                queueing.JOBS[name].note(
                    row.id, f"the worker stopped (gave up after {row.attempts} attempts)", True, 0
                )
                continue
            due = getattr(row, "retry_at", 0) - time.time()
            enqueue(name, row.id, row.attempts, max(0.0, due))
            queued += 1
    if queued or docs:
        log.info("queued %d document(s) for ingestion and requeued %d job(s)", len(docs), queued)
    return queued + len(docs)


def replay(document_id: int, full: bool = False) -> int:
    """Ingest a kept document again (the same rows result)."""
    doc = db.session().get(db.Document, document_id)
    if doc is None:
        raise KeyError(f"no document {document_id}")
    return ingest(db.session(), doc, full=full)
