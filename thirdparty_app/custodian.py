"""Talking to a data custodian: tokens (client credentials, refresh before expiry), resource
requests over mutual TLS when the profile has a certificate, the custodian's rate limit.

Errors: :class:`Retry` for what is worth trying again (5xx, timeouts, 429, a 202 where data was
expected), :class:`CustodianError` for the rest (status and body kept).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from flask import current_app
from limits import RateLimitItemPerSecond

from . import db, vault
from .profiles import Profile
from .ratelimit import limiter

log = logging.getLogger(__name__)
TIMEOUT = (10, 120)  # connect, read
_lock = threading.Lock()


class CustodianError(Exception):
    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status, self.body = status, body


class Retry(CustodianError):
    """Worth trying again later (``delay`` seconds when the custodian said)."""

    def __init__(
        self, message: str, status: int | None = None, body: str = "", delay: float | None = None
    ):
        super().__init__(message, status, body)
        self.delay = delay


def wait_turn(profile: Profile) -> None:
    """Honour the custodian's rate limit (PG&E: one request a second), across workers when the
    limiter's storage is shared (Redis)."""
    per_second = max(profile.requests_per_second, 0.001)
    item = RateLimitItemPerSecond(max(int(per_second), 1), max(int(1 / per_second), 1))
    while not limiter().hit(item, "custodian", profile.name):
        time.sleep(0.05)


def send(profile: Profile, method: str, url: str, **kwargs: Any) -> requests.Response:
    wait_turn(profile)
    try:
        resp = requests.request(
            method, url, timeout=TIMEOUT, cert=profile.cert, verify=profile.verify, **kwargs
        )
    except (requests.ConnectionError, requests.Timeout) as err:
        raise Retry(f"{method} {url}: {err}") from err
    if resp.status_code == 429 or resp.status_code >= 500:
        after = resp.headers.get("Retry-After")
        raise Retry(
            f"{method} {url}: HTTP {resp.status_code}",
            resp.status_code,
            resp.text[:500],
            float(after) if after and after.isdigit() else None,
        )
    return resp


def client_token(profile: Profile) -> str:
    """The third party's own token (PG&E answers it as ``client_access_token``)."""
    cache: dict[str, tuple[str, float]] = current_app.extensions.setdefault("tp.client_tokens", {})
    with _lock:
        cached = cache.get(profile.name)
        if cached and cached[1] > time.time() + 60:
            return cached[0]
    resp = send(
        profile,
        "POST",
        profile.token_url,
        data={"grant_type": "client_credentials"},
        auth=(profile.client_id, profile.client_secret),
    )
    if resp.status_code != 200:
        raise CustodianError(
            f"client credentials refused: HTTP {resp.status_code}", resp.status_code, resp.text
        )
    body = resp.json()
    token = body.get("client_access_token") or body.get("access_token")
    if not token:
        raise CustodianError(
            "token response without client_access_token", resp.status_code, resp.text
        )
    with _lock:
        cache[profile.name] = (token, time.time() + float(body.get("expires_in", 3600)))
    return str(token)


def save_tokens(conn: db.Connection, body: dict[str, Any]) -> None:
    conn.access_token = vault.seal(body["access_token"])
    if body.get("refresh_token"):
        conn.refresh_token = vault.seal(body["refresh_token"])
    conn.expires_at = int(time.time() + float(body.get("expires_in", 3600)))
    conn.subscription_uri = body.get("resourceURI") or conn.subscription_uri
    conn.authorization_uri = body.get("authorizationURI") or conn.authorization_uri
    conn.scope = body.get("scope") or conn.scope


def access_token(profile: Profile, conn: db.Connection) -> str:
    """A customer's access token, refreshed first when it expires within a minute (the new
    refresh token is stored: custodians issue a new one and forget the old)."""
    if conn.expires_at - 60 > time.time():
        return vault.unseal(conn.access_token) or ""
    refresh = vault.unseal(conn.refresh_token)
    if not refresh:
        raise CustodianError("the access token expired and there is no refresh token")
    resp = send(
        profile,
        "POST",
        profile.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh},
        auth=(profile.client_id, profile.client_secret),
    )
    if resp.status_code != 200:
        conn.status, conn.reason = (
            "failed",
            f"token refresh refused (HTTP {resp.status_code}): {resp.text[:200]}",
        )
        db.session().commit()
        raise CustodianError(conn.reason, resp.status_code, resp.text)
    save_tokens(conn, resp.json())
    db.session().commit()
    log.info("refreshed the tokens of connection %s", conn.id)
    return vault.unseal(conn.access_token) or ""


@contextmanager
def stream(
    profile: Profile, url: str, token: str, params: dict[str, str] | None = None
) -> Iterator[requests.Response]:
    """GET a resource as a stream (large documents never sit in memory)."""
    resp = send(
        profile,
        "GET",
        url,
        headers={"Authorization": f"Bearer {token}"},
        params=params,
        stream=True,
    )
    try:
        yield resp
    finally:
        resp.close()


def revoke(profile: Profile, conn: db.Connection) -> None:
    if not conn.authorization_uri:
        return
    resp = send(
        profile,
        "DELETE",
        conn.authorization_uri,
        headers={"Authorization": f"Bearer {client_token(profile)}"},
    )
    if resp.status_code not in (200, 204, 404):
        raise CustodianError(
            f"revocation refused: HTTP {resp.status_code}", resp.status_code, resp.text
        )


def health(profile: Profile) -> dict[str, Any]:
    """ReadServiceStatus, and who the custodian says we are (ApplicationInformation when a
    registration token is configured), and how many authorizations it holds for us."""
    import espi

    token = client_token(profile)
    base = profile.resource_base.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"}
    status = send(profile, "GET", f"{base}/ReadServiceStatus", headers=headers)
    out: dict[str, Any] = {"profile": profile.name, "status_http": status.status_code}
    if status.status_code == 200:
        current = espi.parse(status.content).service_status
        out["service_status"] = (
            current.current_status.label if current and current.current_status is not None else ""
        )
    if profile.registration_token and profile.application_information_id:
        app_info = send(
            profile,
            "GET",
            f"{base}/ApplicationInformation/{profile.application_information_id}",
            headers={"Authorization": f"Bearer {profile.registration_token}"},
        )
        if app_info.status_code == 200:
            (info,) = espi.parse(app_info.content).application_information
            out["application"] = {
                "client_name": info.client_name,
                "notify_uri": info.third_party_notify_uri,
                "scope": info.scope,
            }
        else:
            out["application_http"] = app_info.status_code
    auths = send(profile, "GET", f"{base}/Authorization", headers=headers)
    if auths.status_code == 200:
        feed = espi.parse(auths.content, espi.ParseOptions(warn=False))
        out["authorizations"] = len(feed.authorizations)
        out["active"] = sum(
            1 for a in feed.authorizations if a.status == espi.AuthorizationStatus.ACTIVE
        )
    return out
