"""Jobs on the queue (Huey: SQLite by default, Redis for several machines):

- ``fetch(notification_id)``: download an announced resource (streamed to disk, gzipped, kept
  for replay), then ingest it;
- ``sync(connection_id)``: ask a custodian for a subscription's new data (``Batch/Subscription``
  with ``published-min`` from the last stored reading): 200 is ingested at once, 202 waits for
  the notification; a provider connection (Pelm) fetches from the provider instead;
- ``price(usage_point_id)``: price a usage point's readings on its attached rate plan.

Failures worth retrying (5xx, timeouts, 429, a 202 where data was expected) are retried with
exponential backoff; the others are recorded on the notification or connection.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from flask import Flask, current_app
from huey.api import Huey
from huey.exceptions import RetryTask
from sqlalchemy import select

from appkit import queue
from espi import scope as espi_scope

from . import db, profiles, providers
from .custodian import CustodianError, Retry, access_token, client_token, stream
from .documents import Kept, keeping, record
from .ingest import ingest

log = logging.getLogger(__name__)
SUBSCRIPTION = re.compile(r"/Batch/Subscription/([^/?]+)")
CLIENT_PATHS = ("/Batch/Bulk/", "/Batch/BulkRetailCustomerInfo/", "/Batch/BulkRetailDRPrgInfo/")


def make_huey(app: Flask) -> Huey:
    huey = queue.make_huey(app, "thirdparty")
    retries, delay = app.config["JOB_RETRIES"], app.config["JOB_RETRY_DELAY"]

    @huey.task(retries=retries, retry_delay=delay, retry_backoff=2, name="fetch")
    def fetch_task(notification_id: int) -> None:
        with app.app_context():
            retrying(fetch, notification_id)

    @huey.task(retries=retries, retry_delay=delay, retry_backoff=2, name="sync")
    def sync_task(connection_id: int) -> None:
        with app.app_context():
            retrying(sync, connection_id)

    @huey.task(retries=retries, retry_delay=delay, retry_backoff=2, name="bulk")
    def bulk_task(profile_name: str) -> None:
        with app.app_context():
            retrying(bulk, profile_name)  # type: ignore[arg-type]

    @huey.task(retries=retries, retry_delay=delay, retry_backoff=2, name="price")
    def price_task(usage_point_id: int) -> None:
        with app.app_context():
            retrying(providers.price_usage_point, usage_point_id)

    app.extensions["tp.huey"] = huey
    app.extensions["tp.price"] = price_task
    app.extensions["tp.fetch"] = fetch_task
    app.extensions["tp.sync"] = sync_task
    app.extensions["tp.bulk"] = bulk_task
    return huey


def retrying(job: Any, key: int) -> None:
    try:
        job(key)
    except Retry as err:
        log.warning("%s(%s): %s; will retry", job.__name__, key, err)
        raise RetryTask(str(err), delay=err.delay) from err


def enqueue_fetch(notification_id: int) -> None:
    current_app.extensions["tp.fetch"](notification_id)


def enqueue_sync(connection_id: int) -> None:
    current_app.extensions["tp.sync"](connection_id)


def enqueue_bulk(profile_name: str) -> None:
    current_app.extensions["tp.bulk"](profile_name)


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
    profile: profiles.Profile, uri: str, token: str, params: dict[str, str] | None = None
) -> Kept | None:
    """Stream a document to a kept gzipped file, or None when the custodian answered 202 (data
    to come by notification)."""
    with stream(profile, uri, token, params) as resp:
        if resp.status_code == 202:
            return None
        if resp.status_code != 200:
            raise CustodianError(
                f"GET {uri}: HTTP {resp.status_code}", resp.status_code, resp.text[:500]
            )
        with keeping() as out:
            for chunk in resp.iter_content(1 << 16):
                out.write(chunk)
    return out.kept


def fetch(notification_id: int) -> None:
    s = db.session()
    note = s.get(db.Notification, notification_id)
    if note is None or note.status == "done":
        return
    conn = None
    try:
        profile = profiles.get(note.profile)
        if any(p in note.uri for p in CLIENT_PATHS):
            token = client_token(profile)
        else:
            conn = connection_for(note.uri)
            if conn is None or conn.status == "revoked":
                raise CustodianError("no active connection for this subscription")
            token = access_token(profile, conn)
        got = download(profile, note.uri, token)
        if got is None:
            raise Retry(f"GET {note.uri}: 202 where data was announced")
        doc = record(profile.name, note.uri, conn, got)
        ingest(s, doc)
    except Retry:
        raise
    except (CustodianError, KeyError, ValueError) as err:  # not worth retrying
        note.status, note.error = "failed", str(err)
        s.commit()
        log.error("notification %s failed: %s", note.uri, err)
        return
    note.status, note.error = "done", ""
    if conn is not None:
        conn.status, conn.last_sync, conn.reason = "active", int(time.time()), ""
    s.commit()


def published_min(profile: profiles.Profile, *where: Any) -> dict[str, str]:
    """Ask only for what is new: from the start of the last stored reading (of the usage points
    ``where`` selects)."""
    last = db.last_reading_start(*where)
    if last is None:
        return {}
    if profile.published_format == "epoch":
        return {"published-min": str(last)}
    return {"published-min": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last))}


def sync(connection_id: int) -> None:
    """Ask for a subscription's new data (and the customer's information when shared).

    The first time, the whole subscription (``Batch/Subscription/{id}``: 200 now, or 202 and a
    notification); once its usage points are known, each one's new readings from the
    synchronous ``Batch/Subscription/{id}/UsagePoint/{id}`` with its own ``published-min``."""
    s = db.session()
    conn = s.get(db.Connection, connection_id)
    if conn is not None and conn.profile in providers.SLUGS and conn.status != "revoked":
        providers.sync(conn)
        return
    if conn is None or conn.status in ("revoked", "failed") or not conn.subscription_uri:
        return
    profile = profiles.get(conn.profile)
    token = access_token(profile, conn)
    if shares_customer_info(conn.scope):
        customer = SUBSCRIPTION.sub(r"/Batch/RetailCustomer/\1", conn.subscription_uri)
        try:
            got_customer = download(profile, customer, token)
        except CustodianError as err:  # the custodian may not serve it: usage data still comes
            log.warning("connection %s: customer information: %s", conn.id, err)
        else:
            if got_customer is not None:
                ingest(s, record(profile.name, customer, conn, got_customer))
    known = s.scalars(select(db.UsagePoint).where(db.UsagePoint.connection_id == conn.id)).all()
    requests_ = [(f"{conn.subscription_uri}/UsagePoint/{up.href.rsplit('/', 1)[-1]}",
                  published_min(profile, db.UsagePoint.id == up.id)) for up in known]  # fmt: skip
    if not requests_:
        requests_ = [
            (conn.subscription_uri, published_min(profile, db.UsagePoint.connection_id == conn.id))
        ]
    for uri, params in requests_:
        got = download(profile, uri, token, params)
        if got is None:
            log.info("connection %s: the custodian will notify when the data is ready", conn.id)
            continue
        ingest(s, record(profile.name, uri, conn, got))
        conn.status, conn.last_sync = "active", int(time.time())
    s.commit()


def shares_customer_info(scope_text: str) -> bool:
    try:
        blocks = espi_scope.parse(scope_text).function_blocks
    except espi_scope.ScopeError:
        return False
    return any(54 <= n <= 60 for n in blocks)


def bulk(profile_name: str) -> None:
    """Ask for the Bulk of every authorization of ours at a custodian (client token); the
    custodian answers 202 and notifies."""
    profile = profiles.get(profile_name)
    if not profile.bulk_id:
        raise CustodianError(f"custodian {profile.name}: no bulk_id configured")
    uri = f"{profile.resource_base.rstrip('/')}/Batch/Bulk/{profile.bulk_id}"
    got = download(profile, uri, client_token(profile))
    if got is not None:
        ingest(db.session(), record(profile.name, uri, None, got))


def recover() -> int:
    """Finish what a worker that died left: documents fetched but not ingested (their
    transaction never committed) are ingested and their notifications marked done; notifications
    with nothing fetched are queued again. Run when a worker starts; jobs are idempotent."""
    s = db.session()
    docs = s.scalars(select(db.Document).where(db.Document.status == "fetched")).all()
    for doc in docs:
        for note in s.scalars(select(db.Notification).where(db.Notification.uri == doc.uri)):
            note.status, note.error = "done", ""  # committed with the readings, or not at all
        ingest(s, doc)
    notes = s.scalars(select(db.Notification.id).where(db.Notification.status == "queued")).all()
    for note_id in notes:
        enqueue_fetch(note_id)
    if notes or docs:
        log.info("recovered %d document(s) and %d notification(s)", len(docs), len(notes))
    return len(notes) + len(docs)


def replay(document_id: int, full: bool = False) -> int:
    """Ingest a kept document again (the same rows result)."""
    doc = db.session().get(db.Document, document_id)
    if doc is None:
        raise KeyError(f"no document {document_id}")
    return ingest(db.session(), doc, full=full)
