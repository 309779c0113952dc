"""Ending connections and deleting what they brought: a customer's "disconnect", "delete this
source's data" and "delete my account"."""

from __future__ import annotations

import contextlib
import logging
import os

from sqlalchemy import delete, select

import espi

from . import db, profiles, providers
from .db import ConnectionState
from .readings import guard

log = logging.getLogger(__name__)


class NotEnded(Exception):
    """A source refused to end the sharing (the custodian is down, say): nothing was deleted."""


def end(conn: db.Connection) -> str:
    """Stop the sharing at its source (:func:`.providers.disconnect`) and mark the connection
    revoked, its credentials forgotten; what was done, in words. Raises NotEnded, and changes
    nothing but the reason, when the source could not end it (down, or it refused)."""
    done = ""
    if conn.profile != db.UPLOAD:
        try:
            done = providers.disconnect(conn)
        except (espi.ProviderError, LookupError, ValueError) as err:
            conn.reason = f"ending the sharing at {providers.title_of(conn.profile)} failed: {err}"
            raise NotEnded(str(err)) from err
    conn.status, conn.reason = ConnectionState.REVOKED, done
    conn.access_token = conn.refresh_token = None
    conn.extra = ""
    return done


def connection(conn: db.Connection) -> set[str]:
    """Delete a connection and everything stored from it: readings, meter readings, reading
    types, bills, rate plans and their estimates, usage points, customer information, kept
    documents. Returns the kept files to remove once this is committed (:func:`remove_files`)."""
    s = db.session()
    guard(s, conn.id)  # no ingestion of this connection writes while it is deleted
    ups = select(db.UsagePoint.id).where(db.UsagePoint.connection_id == conn.id)
    mrs = select(db.MeterReading.id).where(db.MeterReading.usage_point_id.in_(ups))
    bills = select(db.Bill.id).where(db.Bill.usage_point_id.in_(ups))
    s.execute(delete(db.Reading).where(db.Reading.meter_reading_id.in_(mrs)))
    s.execute(delete(db.ReadingBlock).where(db.ReadingBlock.meter_reading_id.in_(mrs)))
    s.execute(delete(db.MeterReading).where(db.MeterReading.usage_point_id.in_(ups)))
    s.execute(delete(db.BillLineItem).where(db.BillLineItem.bill_id.in_(bills)))
    s.execute(delete(db.Bill).where(db.Bill.usage_point_id.in_(ups)))
    plans = select(db.RatePlan.id).where(db.RatePlan.usage_point_id.in_(ups))
    s.execute(delete(db.PlanCost).where(db.PlanCost.rate_plan_id.in_(plans)))
    s.execute(delete(db.RatePlan).where(db.RatePlan.usage_point_id.in_(ups)))
    s.execute(delete(db.UsagePoint).where(db.UsagePoint.connection_id == conn.id))
    s.execute(delete(db.ReadingType).where(db.ReadingType.connection_id == conn.id))
    s.execute(delete(db.CustomerInfo).where(db.CustomerInfo.connection_id == conn.id))
    if conn.subscription_uri:
        sub = conn.subscription_uri
        s.execute(
            delete(db.Notification).where(
                (db.Notification.uri == sub)
                | db.Notification.uri.startswith(sub + "/")
                | db.Notification.uri.startswith(sub + "?")
            )
        )
    s.execute(delete(db.Notification).where(db.Notification.connection_id == conn.id))
    uploads = select(db.Upload.path).where(db.Upload.connection_id == conn.id)
    files = {p for p in s.scalars(uploads) if p}
    s.execute(delete(db.Upload).where(db.Upload.connection_id == conn.id))
    mine = db.Document.connection_id == conn.id
    if conn.subscription_uri:
        # a kept Bulk document holds this customer's data among others': it goes too (the
        # others' rows stay in the database; only replaying that file is lost)
        custodian = [p.name for p in profiles.owners(conn.subscription_uri)] or [conn.profile]
        mine = mine | (db.Document.connection_id.is_(None) & db.Document.profile.in_(custodian))
    paths = set(s.scalars(select(db.Document.path).where(mine)))
    s.execute(delete(db.Document).where(mine))
    s.execute(delete(db.Connection).where(db.Connection.id == conn.id))
    s.expunge(conn)
    return paths | files


def remove_files(paths: set[str]) -> None:
    """Remove kept files no document refers to any more (a file is named by its content:
    another connection may keep the same one). Call after the deletion is committed."""
    s = db.session()
    still_kept = set(s.scalars(select(db.Document.path).where(db.Document.path.in_(paths))))
    for path in paths - still_kept:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def account(found: db.Account) -> set[str]:
    """Delete an account: every sharing ended at its source first (NotEnded, and nothing
    deleted, when one refuses), then every connection's data, the API keys and the account.
    Returns the kept files to remove once committed."""
    s = db.session()
    conns = s.scalars(select(db.Connection).where(db.Connection.account_id == found.id)).all()
    for conn in conns:
        if conn.status != ConnectionState.REVOKED:
            end(conn)
    paths: set[str] = set()
    for conn in conns:
        paths |= connection(conn)
    uploads = select(db.Upload.path).where(db.Upload.account_id == found.id)
    paths |= {p for p in s.scalars(uploads) if p}  # files still waiting for the worker
    s.execute(delete(db.Upload).where(db.Upload.account_id == found.id))
    s.execute(delete(db.ApiKey).where(db.ApiKey.account_id == found.id))
    s.delete(found)
    log.info("account %s deleted with %d connection(s)", found.id, len(conns))
    return paths
