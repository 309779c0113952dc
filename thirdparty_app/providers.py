"""What a customer connects, driven by the provider registry (:mod:`espi.providers`): every
registered provider the configuration sets up and every configured Green Button custodian
profile is offered, connected, synced, disconnected and notified the same way. Adding a
provider to the app is registering it in the library (``@espi.providers.register``) and giving
its settings; no module here names one.

A :class:`Source` is one thing a customer can connect; its name is the ``profile`` of the
connections made through it:

- a custodian profile (``CUSTODIANS``, see :mod:`.profiles`; :class:`espi.client.Custodian`,
  OAUTH), offered when its client id and secret, authorize, token and resource URLs are set;
- every other registered provider (``PROVIDERS`` in the config, or
  ``THIRDPARTY_PROVIDERS__<slug>__<setting>``; the names of its ``settings``), offered when no
  required setting is missing — unless it connects by NONE (WattShift: prices for rate plans).

Connecting (every form has its CSRF token; no GET changes anything):

- OAUTH, WIDGET: ``POST /connect/<name>`` records a connection *connecting*, asks
  ``begin_connect`` where to send the browser and keeps the Redirect's state in the session
  (``/connect/<name>/go`` sends the browser on);
  ``GET /callback/<name>`` hands the answer to ``finish_connect`` with that state (a code from
  another browser finds none and is refused), stores the credentials sealed and queues a sync.
  A connect whose answer never comes is removed after ``CONNECT_EXPIRY`` seconds
  (:func:`.jobs.cleanup`), and its answer is refused after that time.
- CREDENTIALS: ``/connect/<name>`` shows ``connect_form(values)``'s inputs; each POST shows the
  next step until every input shown was sent, then ``connect(values)``; a FieldError is shown
  at its input. Nothing is recorded until the provider took the credentials.
- Re-authorize: the same with ``connection`` (a failed connection of the customer's): the new
  credentials replace the old ones (ended at the source first, as far as it can), the data
  stays.

The rest: a sync is ``provider.fetch(credentials, since)`` — the credentials unsealed from the
connection and sealed again after every call (renewed tokens, ended jobs), the Feed kept as a
Green Button document and ingested like a custodian's download (a custodian's subscription
keeps its own requests, :mod:`.jobs`); *Disconnect* is ``provider.disconnect(credentials)``
(a custodian's revocation through :mod:`.clients`); ``POST /providers/<slug>/notify``, for a
provider that notifies, syncs the connections of the accounts ``notified_accounts(body)``
names, answering the same whether it knows them or not.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import func, select, update
from werkzeug.exceptions import RequestEntityTooLarge

import espi
from appkit.http import problem
from espi.client import NOTIFICATION_LIMIT, Custodian
from espi.providers import REGISTRY, ConnectKind, Credentials, Field, FieldError, Provider, get
from espi.providers import wattshift as espi_ws

from . import accounts, clients, db, profiles, queueing, vault
from .accounts import account, webhook
from .db import ConnectionState
from .documents import keeping, record
from .ingest import SUBSCRIPTION_ID, ingest
from .ratelimit import count, retry_in

log = logging.getLogger(__name__)
bp = Blueprint("providers", __name__)

OVERLAP = 86400  # later syncs ask again for the last day (late or corrected readings)
#: a connection synced this recently is not synced again for a notification
NOTIFIED_AGAIN = 60


# --------------------------------------------------------------------------- sources


def settings(slug: str) -> dict[str, Any]:
    """A registered provider's settings from the configuration (``PROVIDERS[slug]``)."""
    return dict((current_app.config.get("PROVIDERS") or {}).get(slug) or {})


def configured(slug: str) -> bool:
    """Whether a registered provider has every required setting."""
    return slug in REGISTRY and not REGISTRY[slug].missing(settings(slug))


#: the longest profile (or provider) name: the connection and notification rows' column
NAME_LIMIT = 40


def check_settings(config: Mapping[str, Any]) -> None:
    """At start: every ``PROVIDERS`` entry names a registered provider (UnknownProvider lists
    them) and only settings it takes (a ValueError names the others, as ``from_settings``
    would); one that lacks a required setting is logged: it is not offered. Custodian profile
    names fit the rows that name them (at most :data:`NAME_LIMIT` characters)."""
    for name in (config.get("CUSTODIANS") or {}) | (config.get("PROVIDERS") or {}):
        if len(name) > NAME_LIMIT:
            raise ValueError(f"{name!r}: a profile's name is at most {NAME_LIMIT} characters")
    for slug, values in (config.get("PROVIDERS") or {}).items():
        cls = get(slug)
        if issubclass(cls, Custodian):
            raise ValueError("custodians are configured under CUSTODIANS, by profile")
        known = [setting.name for setting in cls.settings]
        unknown = sorted(set(values or {}) - set(known))
        if unknown:
            raise ValueError(
                f"provider {slug}: unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(known)}"
            )
        lacking = cls.missing(values or {})
        if lacking:
            log.warning("provider %s is not offered: set %s", slug, ", ".join(lacking))


@dataclass(frozen=True)
class Source:
    """Something a customer connects: a custodian profile or a registered provider."""

    name: str  # the connections' profile: the profile's name, or the provider's slug
    title: str
    provider: type[Provider]
    #: whether every required setting is there (a source that is not is not offered)
    ready: bool

    @property
    def custodian(self) -> bool:
        return issubclass(self.provider, Custodian)

    @property
    def kind(self) -> ConnectKind:
        return self.provider.capabilities.connect

    @property
    def offered(self) -> bool:
        return self.ready and self.kind is not ConnectKind.NONE

    def client(self) -> Provider:
        """The source's client: the process's client of a custodian profile (its client token
        cached, paced, :mod:`.clients`), or the provider built from its settings."""
        if self.custodian:
            return clients.custodian(self.name)
        return self.provider.from_settings(settings(self.name))


def sources() -> dict[str, Source]:
    """Every source by name: the custodian profiles, then the other registered providers."""
    configured_custodians = current_app.config.get("CUSTODIANS") or {}
    found = {
        name: Source(
            name,
            p.title or name,
            Custodian,
            not Custodian.missing({**configured_custodians.get(name, {}), "profile": name}),
        )
        for name, p in profiles.all_profiles().items()
    }
    for slug in sorted(REGISTRY):
        cls = REGISTRY[slug]
        if issubclass(cls, Custodian):
            continue  # its instances are the profiles
        if slug in found:
            raise ValueError(
                f"the custodian profile {slug!r} has the name of the provider {slug!r}: "
                "rename the profile"
            )
        found[slug] = Source(slug, cls.title, cls, configured(slug))
    return found


def source(name: str) -> Source:
    """The source of a connection's profile (LookupError: none of that name)."""
    found = sources().get(name)
    if found is None:
        raise LookupError(f"no custodian profile or provider {name!r}")
    return found


def offered() -> list[Source]:
    """What the home page offers to connect."""
    return [s for s in sources().values() if s.offered]


def title_of(profile: str) -> str:
    """A connection's source, in words."""
    if profile == db.UPLOAD:
        return "Uploaded file"
    found = sources().get(profile)
    return found.title if found else profile


def wattshift_client() -> espi_ws.WattShift:
    return espi_ws.WattShift.from_settings(settings(espi_ws.WattShift.slug))


def failed_page(title: str, text: str) -> tuple[str, int]:
    return render_template("failed.html", title=title, error="", text=text), 400


# --------------------------------------------------------------------------- credentials


def credentials(src: Source, conn: db.Connection) -> Credentials:
    """A connection's credentials, unsealed."""
    if src.custodian:
        return clients.credentials(conn)
    extra = json.loads(vault.unseal(conn.extra) or "{}") if conn.extra else {}
    return Credentials(
        account=conn.label,
        access_token=vault.unseal(conn.access_token),
        refresh_token=vault.unseal(conn.refresh_token),
        expires_at=conn.expires_at,
        extra={str(k): str(v) for k, v in extra.items()},
    )


def store(src: Source, conn: db.Connection, creds: Credentials) -> None:
    """Credentials into the connection's columns, sealed (``label``: the account at the
    provider; a custodian's subscription and authorization have columns of their own)."""
    if src.custodian:
        clients.store(conn, creds)
        return
    conn.label = creds.account
    conn.access_token = vault.seal(creds.access_token)
    conn.refresh_token = vault.seal(creds.refresh_token)
    conn.expires_at = creds.expires_at
    conn.extra = (vault.seal(json.dumps(creds.extra)) or "") if creds.extra else ""


def disconnect(conn: db.Connection) -> str:
    """End a connection at its source; what was done, in words. A provider that no longer
    takes the credentials has nothing left to end (a custodian refusing the revocation is an
    error: the authorization would be left). Other refusals are raised (ProviderError)."""
    src = source(conn.profile)
    if not conn.connected:
        return f"nothing was shared through {src.title} yet"
    try:
        return src.client().disconnect(credentials(src, conn))
    except espi.AuthError as err:
        if src.custodian:
            raise
        return f"{src.title} no longer takes these credentials ({err.message}): nothing to end"


def replace_credentials(src: Source, conn: db.Connection, creds: Credentials) -> None:
    """Store new credentials; those a re-authorized connection held before are ended at the
    source first (as far as it can: a refusal is logged, not shown)."""
    if conn.connected:
        try:
            log.info("connection %s: the old credentials: %s", conn.id, disconnect(conn))
        except (espi.ProviderError, ValueError) as err:
            log.warning("connection %s: the old credentials were not ended: %s", conn.id, err)
    before = conn.subscription_uri
    store(src, conn, creds)
    resubscribed(conn, before)


def resubscribed(conn: db.Connection, before: str | None) -> None:
    """A connection authorized again under a new subscription keeps what it stored: its usage
    points and meter readings are the same resources (the custodian's ids in their hrefs are
    unchanged), filed under the new subscription's hrefs so its data is not stored twice."""
    old, new = (SUBSCRIPTION_ID.search(uri or "") for uri in (before, conn.subscription_uri))
    if old is None or new is None or old.group(1) == new.group(1):
        return
    was, now = f"/Subscription/{old.group(1)}/", f"/Subscription/{new.group(1)}/"
    mine = db.UsagePoint.connection_id == conn.id
    s = db.session()
    for model, where in (
        (db.UsagePoint, mine),
        (db.MeterReading, db.MeterReading.usage_point_id.in_(select(db.UsagePoint.id).where(mine))),
    ):
        s.execute(
            update(model).where(where).values(href=func.replace(model.href, was, now)),
            execution_options={"synchronize_session": False},
        )
    log.info("connection %s: its stored resources moved from %s to %s", conn.id, was, now)


# --------------------------------------------------------------------------- connecting


def offered_or_404(name: str) -> Source:
    found = sources().get(name)
    if found is None or not found.offered:
        abort(404, f"{name} is not offered here (not configured: see README, connecting)")
    return found


def target_of(src: Source, conn_id: str | None) -> db.Connection | None:
    """The failed connection of the customer's a connect re-authorizes (None: a new one)."""
    if not conn_id:
        return None
    if not conn_id.isdigit():
        abort(404, f"no connection {conn_id}")
    conn = accounts.connection(int(conn_id))
    accounts.owner_only(conn)
    if conn.profile != src.name or conn.status != ConnectionState.FAILED:
        abort(400, "only a failed connection of this source is authorized again")
    return conn


def fail(conn: db.Connection, reason: str) -> None:
    conn.status, conn.reason = ConnectionState.FAILED, reason
    db.session().commit()


def finish(src: Source, conn: db.Connection | None, creds: Credentials, reason: str) -> Any:
    """A connect finished: the credentials on the connection, its sync queued, home."""
    s = db.session()
    if conn is None:
        conn = db.Connection(profile=src.name, account_id=account().id)
        s.add(conn)
    replace_credentials(src, conn, creds)
    conn.status, conn.reason, conn.attempts = ConnectionState.WAITING, reason, 0
    s.commit()
    queueing.enqueue("sync", conn.id, 0)
    return redirect(url_for("tp.home"))


@bp.get("/connect/<name>")
def connect_page(name: str) -> Any:
    """The page that starts connecting a source: its form (CREDENTIALS), or what happens and
    a button (OAUTH, WIDGET; the button's POST starts it)."""
    src = offered_or_404(name)
    target = target_of(src, request.args.get("connection"))
    if src.kind is not ConnectKind.CREDENTIALS:
        return render_template("connect.html", source=src, connection=target)
    try:
        fields = src.client().connect_form({})
    except espi.ProviderError as err:
        return form_page(src, target, [], {}, problem=f"{src.title} refused: {err.message}")
    return form_page(src, target, fields, {})


@bp.post("/connect/<name>")
def connect(name: str) -> Any:
    src = offered_or_404(name)
    target = target_of(src, request.form.get("connection"))
    if src.kind is ConnectKind.CREDENTIALS:
        return fill_in(src, target)
    return begin(src, target)


def begin(src: Source, target: db.Connection | None) -> Any:
    """OAUTH, WIDGET: a connection *connecting* (or the failed one re-authorized), the
    browser sent to the source's page; the Redirect's state kept in the session."""
    s = db.session()
    conn = target
    if conn is None:
        conn = db.Connection(
            profile=src.name,
            account_id=account().id,
            status=ConnectionState.CONNECTING,
            reason=f"waiting for {src.title}",
        )
        s.add(conn)
        s.commit()
    at_source = conn.label or f"tp-{conn.id}-{secrets.token_hex(4)}"  # the customer's id there
    back = url_for("providers.callback", name=src.name, _external=True)
    try:
        start = src.client().begin_connect(at_source, back)
    except espi.ProviderError as err:
        fail(conn, str(err))
        return failed_page(src.title, f"{src.title} could not start connecting ({err.message}).")
    session[f"connect.{src.name}"] = {
        "connection": conn.id,
        "state": start.state,
        "started": int(time.time()),
        "url": start.url,
    }
    return redirect(url_for("providers.going", name=src.name), 303)


@bp.get("/connect/<name>/go")
def going(name: str) -> Any:
    """On to the source's page. Not a redirect of the form's POST: the pages' CSP
    (``form-action 'self'``) holds a form submission, redirects included, to this origin, so the
    browser goes there from this page (a refresh, and a link)."""
    src = offered_or_404(name)
    pending = session.get(f"connect.{name}")
    if not pending:
        return redirect(url_for("providers.connect_page", name=name))
    return render_template("connect.html", source=src, going=pending["url"])


REASONS = {
    "access_denied": "You chose not to share your data. Nothing was shared.",
    "mismatching_state": "The answer did not match this browser's request (an old or a forged "
    "link). Please start again.",
}


def refused(title: str, code: str, text: str) -> tuple[str, int]:
    return render_template("failed.html", title=title, error=code, text=text), 400


@bp.get("/callback/<name>")
def callback(name: str) -> Any:
    """The source's answer: given, with the state kept in this browser's session, to
    ``finish_connect``; the credentials sealed on the connection; its sync queued."""
    src = sources().get(name)
    if src is None or src.kind not in (ConnectKind.OAUTH, ConnectKind.WIDGET):
        abort(404, f"no custodian profile or provider {name!r} to answer")
    pending = session.pop(f"connect.{name}", None)
    s = db.session()
    conn = s.get(db.Connection, pending["connection"]) if pending else None
    expiry = int(current_app.config["CONNECT_EXPIRY"])
    late = f"This connect was started more than {expiry // 60} minutes ago: please start again."
    if pending and conn is None:  # removed by the cleanup
        return refused(src.title, "expired", late)
    if conn is None or conn.account_id != account().id or conn.profile != name:
        return refused(
            src.title, "", "This answer does not belong to a connection started in this browser."
        )
    cutoff = int(time.time()) - expiry
    if conn.status == ConnectionState.CONNECTING:  # taken out of the cleanup's reach, or gone
        taken = db.changed(
            s.execute(
                update(db.Connection)
                .where(
                    db.Connection.id == conn.id,
                    db.Connection.status == ConnectionState.CONNECTING,
                    db.Connection.created >= cutoff,
                )
                .values(status=ConnectionState.WAITING, reason=f"connecting to {src.title}")
            )
        )
        s.commit()
    else:
        taken = conn.status == ConnectionState.FAILED and pending["started"] >= cutoff
    if not taken:
        return refused(src.title, "expired", late)
    s.refresh(conn)
    try:
        creds = src.client().finish_connect(pending["state"], request.args.to_dict())
    except espi.AuthError as err:
        fail(conn, err.message)
        message = err.message[:1].upper() + err.message[1:]
        return refused(src.title, err.code or "", REASONS.get(err.code or "") or
                       f"{message}: nothing was shared.")  # fmt: skip
    except espi.ProviderError as err:  # not even an answer of the kind, or an outage
        detail = f"{err}: {err.body[:200]}" if err.body else str(err)
        log.warning("connect to %s failed: %s", name, detail)
        fail(conn, detail)  # the source's answer: in the log and for operators, not here
        return refused(
            src.title,
            "token_exchange_failed",
            f"{src.title} did not complete the connection. Please try again later.",
        )
    return finish(src, conn, creds, "")


def fill_in(src: Source, target: db.Connection | None) -> Any:
    """CREDENTIALS: the next step of the form, or — every input shown was sent — connect."""
    values = {k: v for k, v in request.form.items() if k not in ("csrf_token", "connection")}
    client = src.client()
    fields: list[Field] = []
    try:
        fields, error = form_fields(client, values)
        if error is not None:
            return form_page(src, target, fields, values, error=error)
        if not all(f.name in values for f in fields):
            return form_page(src, target, fields, values)
        creds = client.connect(values)
    except FieldError as err:
        return form_page(src, target, fields, values, error=err)
    except espi.ProviderError as err:
        return form_page(src, target, fields, values, problem=f"{src.title} refused: {err.message}")
    return finish(src, target, creds, f"fetching from {src.title}")


def form_fields(
    client: Provider, values: Mapping[str, str]
) -> tuple[list[Field], FieldError | None]:
    """The inputs to show for ``values``; an input the provider refuses already (a ZIP code
    no utility serves) is asked again: the form without it, and the refusal."""
    values = dict(values)
    refusal = None
    while True:
        try:
            return client.connect_form(values), refusal
        except FieldError as err:
            if err.field not in values:
                raise
            refusal = refusal or err
            del values[err.field]


def form_page(
    src: Source,
    target: db.Connection | None,
    fields: list[Field],
    values: Mapping[str, str],
    error: FieldError | None = None,
    problem: str = "",
) -> tuple[str, int]:
    """A CREDENTIALS source's form: what was sent is filled in again (never a password); a
    FieldError at its input (above the form when the form has no such input)."""
    shown = [
        f
        if f.value or f.kind == "password"
        else dataclasses.replace(f, value=values.get(f.name, ""))
        for f in fields
    ]
    if error is not None and error.field not in {f.name for f in shown}:
        problem, error = error.message, None
    return render_template(
        "connect.html",
        source=src,
        connection=target,
        fields=shown,
        error=error,
        problem=problem,
    ), (400 if error is not None or problem else 200)


# --------------------------------------------------------------------------- syncing


def sync(conn: db.Connection) -> None:
    """Fetch a provider connection's new data and ingest it (job). The credentials are stored
    again after the call, whatever it raised. Data the provider is still gathering, rate limits
    and outages are raised for the job to try again later (:mod:`.queueing`); other refusals
    mark the connection failed with the provider's message."""
    s = db.session()
    src = source(conn.profile)
    provider = src.client()
    creds = credentials(src, conn)
    last = db.last_reading_start(db.UsagePoint.connection_id == conn.id)
    history = int(current_app.config["PROVIDER_HISTORY_DAYS"]) * 86400
    since: int | None = None  # the first time: the provider's own default history
    if last is not None:
        since = last - OVERLAP
    elif history:
        since = int(time.time()) - history
    try:
        feed = provider.fetch(creds, since)
    except espi.NotReady as err:
        raise espi.NotReady(
            f"{src.title} is still gathering this account's data ({err.message})",
            provider=conn.profile,
        ) from err
    except (espi.RateLimited, espi.Unavailable):
        raise
    except espi.ProviderError as err:
        conn.status, conn.reason = ConnectionState.FAILED, str(err)
        log.error("connection %s: %s", conn.id, err)
        return
    finally:
        store(src, conn, creds)
        s.commit()
    doc = keep_feed(feed, f"{conn.profile}:{conn.label}", conn, provider.base_url)
    ingest(s, doc)
    conn.status, conn.reason, conn.last_sync = ConnectionState.ACTIVE, "", int(time.time())
    s.commit()


def keep_feed(feed: espi.Feed, uri: str, conn: db.Connection, base: str) -> db.Document:
    """Keep a provider's Feed as a gzipped Green Button document (streamed) and record it."""
    with keeping() as out:
        espi.write(feed, out, espi.WriteOptions(base=f"{base}/espi/1_1/resource"))  # type: ignore[arg-type]
    return record(conn.profile, f"{uri}:{out.kept.sha256[:16]}", conn, out.kept)


# --------------------------------------------------------------------------- notifications


@bp.post("/providers/<slug>/notify")
@webhook
def notify(slug: str) -> Any:
    """A provider says data is ready (WattzOn's SQS message body, relayed from the queue): the
    connections of the accounts its body names (``notified_accounts``) are synced, unless a
    sync is already waiting to try again or one ended less than :data:`NOTIFIED_AGAIN` s ago.
    Unsigned, so only a hint: the sync asks the provider itself. The answer is the same
    whether the body names a connection here or not; a malformed body is a 400, a body over
    1 MiB a 413, new bodies beyond ``NOTIFICATION_LIMIT`` per source address a 429."""
    src = sources().get(slug)
    if src is None or src.custodian or not src.ready or not src.provider.capabilities.notifications:
        return problem(404, "not_found", f"no provider {slug!r} that notifies is configured")
    request.max_content_length = NOTIFICATION_LIMIT
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return problem(413, "invalid_request", f"at most {NOTIFICATION_LIMIT:,} bytes")
    try:
        named = src.client().notified_accounts(body)
    except ValueError as err:
        return {"error": str(err)}, 400
    limit, address = current_app.config["NOTIFICATION_LIMIT"], request.remote_addr or ""
    if not count(limit, "provider-notify", address):
        return problem(
            429,
            "too_many_requests",
            f"more than {limit} notifications from {address}",
            headers={"Retry-After": str(retry_in(limit, "provider-notify", address))},
        )
    s = db.session()
    quiet = int(time.time()) - NOTIFIED_AGAIN
    due = s.scalars(
        select(db.Connection.id).where(
            db.Connection.profile == slug,
            db.Connection.label.in_(named),
            db.Connection.status.in_((ConnectionState.WAITING, ConnectionState.ACTIVE)),
            db.Connection.attempts == 0,
            db.Connection.last_sync <= quiet,
        )
    ).all()
    for conn_id in due:
        queueing.enqueue("sync", conn_id, 0)
    return {"status": "accepted"}, 202
