"""The app's Connect My Data clients (:class:`espi.client.Custodian`) and the customers' tokens.

- One client per custodian profile per process, so its client token is cached once; paced by
  the shared rate limiter (:func:`.ratelimit.pacer`, Redis when several processes run) and
  never retrying by itself (``retries=0``): the jobs count attempts, in one place.
- A customer's tokens live on the connection, sealed (:mod:`.vault`). A custodian issues a new
  refresh token with every renewal and forgets the old one, so renewals are serialised per
  connection: the worker that takes the connection's lease (``refreshing``, an atomic
  compare-and-set, no transaction held across the token request) redeems the refresh token and
  stores the new pair; the others wait and read the stored pair. A lease of a worker that died
  runs out after :data:`LEASE` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import current_app
from sqlalchemy import select, update

import espi
from espi import client as espi_client
from espi.client import Accepted
from espi.providers.base import Credentials

from . import db, profiles, vault
from .ratelimit import pacer

log = logging.getLogger(__name__)
#: the key, in a Credentials' extra, of the connection the tokens belong to
CONNECTION = "connection"
#: seconds a worker may hold the right to renew a connection's tokens
LEASE = 90
_lock = threading.Lock()


class Custodian(espi_client.Custodian):
    """The library's client; a customer's renewal goes through :func:`renewed` (serialised,
    stored) when the credentials name their connection."""

    def refresh(self, credentials: Credentials) -> Credentials:
        conn_id = credentials.extra.get(CONNECTION)
        if not conn_id:
            return super().refresh(credentials)
        return renewed(int(conn_id), credentials, super().refresh)


def custodian(name: str) -> Custodian:
    """The process's client of a profile (KeyError: no such profile)."""
    clients: dict[str, Custodian] = current_app.extensions.setdefault(
        "thirdparty_app.custodians", {}
    )
    found = clients.get(name)
    if found is None:
        profile = profiles.get(name)
        with _lock:
            found = clients.get(name) or Custodian(
                profile, throttle=pacer(name, profile.requests_per_second), retries=0
            )
            clients[name] = found
    return found


def credentials(conn: db.Connection) -> Credentials:
    """A connection's tokens, unsealed, for the client."""
    return Credentials(
        account=conn.subscription_uri or "",
        access_token=vault.unseal(conn.access_token),
        refresh_token=vault.unseal(conn.refresh_token),
        expires_at=conn.expires_at,
        extra={
            "authorizationURI": conn.authorization_uri or "",
            "scope": conn.scope,
            CONNECTION: str(conn.id),
        },
    )


def columns(creds: Credentials) -> dict[str, Any]:
    """The connection's columns for credentials (tokens sealed)."""
    return {
        "access_token": vault.seal(creds.access_token),
        "refresh_token": vault.seal(creds.refresh_token),
        "expires_at": creds.expires_at,
        "subscription_uri": creds.account or None,
        "authorization_uri": creds.extra.get("authorizationURI") or None,
        "scope": creds.extra.get("scope", ""),
    }


def store(conn: db.Connection, creds: Credentials) -> None:
    for key, value in columns(creds).items():
        setattr(conn, key, value)


def renewed(
    conn_id: int, creds: Credentials, redeem: Callable[[Credentials], Credentials]
) -> Credentials:
    """New tokens for a connection, redeemed by one worker at a time (see the module's
    docstring); ``redeem`` asks the custodian. Uses (and commits) the app context's session:
    call it holding no uncommitted change."""
    s = db.session()
    table = db.Connection
    deadline = time.monotonic() + LEASE + 5
    while True:
        s.commit()  # see what other workers committed; hold nothing while waiting
        row = s.execute(
            select(
                table.refresh_token, table.access_token, table.expires_at, table.refreshing
            ).where(table.id == conn_id)
        ).one_or_none()
        if row is None:
            raise espi.AuthError(f"connection {conn_id} no longer exists", provider="custodian")
        if vault.unseal(row.refresh_token) != creds.refresh_token:  # renewed by another worker
            return Credentials(
                account=creds.account,
                access_token=vault.unseal(row.access_token),
                refresh_token=vault.unseal(row.refresh_token),
                expires_at=row.expires_at,
                extra=dict(creds.extra),
            )
        now = int(time.time())
        if row.refreshing <= now:
            took = db.changed(
                s.execute(
                    update(table)
                    .where(table.id == conn_id, table.refreshing == row.refreshing)
                    .values(refreshing=now + LEASE)
                )
            )
            s.commit()
            if took:
                return redeemed(conn_id, creds, redeem)
        if time.monotonic() > deadline:
            raise espi.Unavailable(
                f"connection {conn_id}: another worker is renewing its tokens", provider="custodian"
            )
        time.sleep(0.05)


def redeemed(
    conn_id: int, creds: Credentials, redeem: Callable[[Credentials], Credentials]
) -> Credentials:
    """Redeem holding the lease; store the new pair and give the lease back in one update."""
    s = db.session()
    table = db.Connection
    try:
        new = redeem(creds)
    except BaseException:
        s.rollback()
        s.execute(update(table).where(table.id == conn_id).values(refreshing=0))
        s.commit()
        raise
    s.execute(update(table).where(table.id == conn_id).values(refreshing=0, **columns(new)))
    s.commit()
    log.info("connection %s: tokens renewed", conn_id)
    return new


def read(client: Custodian, path: str) -> espi.Feed | None:
    """A small resource (status, authorizations) parsed; None when it answered 202."""
    with client.get(path) as got:
        if isinstance(got, Accepted):
            return None
        return espi.parse(b"".join(got.chunks()), espi.ParseOptions(warn=False))


def health(name: str) -> dict[str, Any]:
    """ReadServiceStatus; who the custodian says we are (ApplicationInformation, with the
    profile's registration token); how many authorizations it holds for us."""
    client = custodian(name)
    profile = client.profile
    out: dict[str, Any] = {"profile": name}
    status = read(client, "ReadServiceStatus")
    current = status.service_status if status else None
    if current is not None and current.current_status is not None:
        out["service_status"] = current.current_status.label
    if profile.registration_token and profile.application_information_id:
        try:
            found = read(client, f"ApplicationInformation/{profile.application_information_id}")
        except espi.ProviderError as err:
            out["application_error"] = str(err)
        else:
            for info in found.application_information if found else []:
                out["application"] = {
                    "client_name": info.client_name,
                    "notify_uri": info.third_party_notify_uri,
                    "scope": info.scope,
                }
    auths = read(client, "Authorization")
    if auths is not None:
        out["authorizations"] = len(auths.authorizations)
        out["active"] = sum(
            1 for a in auths.authorizations if a.status == espi.AuthorizationStatus.ACTIVE
        )
    return out
