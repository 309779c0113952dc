"""Data providers in the third-party app: Pelm, WattzOn and Griddy connections beside Green
Button ones (WattShift's rate plans: :mod:`.pricing`).

A provider connection is a :class:`db.Connection` whose profile is the provider's slug, its
tokens sealed like a custodian's and ``label`` the customer's id there. Its sync job fetches the
data (:mod:`espi.providers`), keeps it as a Green Button document (gzipped, like a custodian's
download) and ingests it, so the data lands in the same tables and shows on the same pages, API
and exports.

- Pelm: Pelm Connect (the customer signs in to the utility at Pelm), then an access token.
- WattzOn: the customer picks the utility and gives its website's username and password, which
  go straight to WattzOn encrypted under its transmission key (never stored here); a profile and
  two extraction jobs (bills, intervals) follow, and the sync waits for them. WattzOn's SQS
  notification body, POSTed to ``/providers/wattzon/notify``, starts a sync at once.
- Griddy: the member's email and password are exchanged for tokens (the password is not kept).

Configuration (``PROVIDERS`` in the config, or ``THIRDPARTY_PROVIDERS__pelm__client_id=...``):
``pelm``: base_url, connect_url (the Connect page; Pelm's widget in production), client_id,
secret, utility_slug; ``wattzon``: base_url, client_cert, client_key, ca_bundle; ``griddy``:
base_url (Griddy closed in 2021: only a stand-in); ``wattshift``: base_url, api_key.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode

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
from sqlalchemy import select

import espi
from espi.providers import Credentials, FieldError
from espi.providers import griddy as espi_griddy
from espi.providers import pelm as espi_pelm
from espi.providers import wattshift as espi_ws
from espi.providers import wattzon as espi_wz

from . import db, vault
from .accounts import account, webhook
from .documents import keeping, record
from .ingest import ingest

log = logging.getLogger(__name__)
bp = Blueprint("providers", __name__)

SLUGS = ("pelm", "wattzon", "griddy")  # providers a customer connects through
OVERLAP = 86400  # later syncs ask again for the last day (late or corrected readings)
DEFAULTS: dict[str, dict[str, str]] = {
    "pelm": {
        "title": "Pelm",
        "base_url": espi_pelm.Pelm.default_base,
        "connect_url": "",
        "client_id": "",
        "secret": "",
        "utility_slug": "",
    },
    "wattzon": {
        "title": "WattzOn",
        "base_url": espi_wz.WattzOn.default_base,
        "client_cert": "",
        "client_key": "",
        "ca_bundle": "",
    },
    "griddy": {"title": "Griddy", "base_url": ""},
    "wattshift": {"title": "WattShift", "base_url": espi_ws.WattShift.default_base, "api_key": ""},
}
REQUIRED = {
    "pelm": ("client_id", "secret", "connect_url"),
    "wattzon": ("client_cert", "client_key"),
    "griddy": ("base_url",),
    "wattshift": ("api_key",),
}


def settings(slug: str) -> dict[str, str]:
    configured = (current_app.config.get("PROVIDERS") or {}).get(slug) or {}
    unknown = set(configured) - set(DEFAULTS[slug])
    if unknown:
        raise ValueError(f"provider {slug}: unknown setting(s) {', '.join(sorted(unknown))}")
    return {**DEFAULTS[slug], **configured}


def configured(slug: str) -> bool:
    values = settings(slug)
    return all(values[k] for k in REQUIRED[slug])


def pelm_client() -> espi_pelm.Pelm:
    s = settings("pelm")
    return espi_pelm.Pelm(s["client_id"], s["secret"], base_url=s["base_url"])


def wattzon_client() -> espi_wz.WattzOn:
    s = settings("wattzon")
    return espi_wz.WattzOn((s["client_cert"], s["client_key"]), base_url=s["base_url"],
                           verify=s["ca_bundle"] or None)  # fmt: skip


def griddy_client() -> espi_griddy.Griddy:
    return espi_griddy.Griddy(base_url=settings("griddy")["base_url"])


def griddy_credentials(conn: db.Connection) -> Credentials:
    """A Griddy connection's credentials: the user ID and the tokens."""
    return Credentials(account=conn.label, access_token=vault.unseal(conn.access_token),
                       refresh_token=vault.unseal(conn.refresh_token))  # fmt: skip


def wattshift_client() -> espi_ws.WattShift:
    s = settings("wattshift")
    return espi_ws.WattShift(s["api_key"], base_url=s["base_url"])


def failed_page(title: str, text: str) -> tuple[str, int]:
    return render_template("failed.html", title=title, error="", text=text), 400


# --------------------------------------------------------------------------- Pelm Connect


@bp.get("/providers/pelm/connect")
def pelm_connect() -> Any:
    """Start Pelm Connect: a connect token for a new connection, then Pelm's Connect page."""
    if not configured("pelm"):
        abort(404, "Pelm is not configured (see README: THIRDPARTY_PROVIDERS__pelm__...)")
    s = db.session()
    conn = db.Connection(profile="pelm", account_id=account().id, status="waiting",
                         reason="waiting for Pelm Connect")  # fmt: skip
    s.add(conn)
    s.commit()
    conn.label = f"tp-{conn.id}-{secrets.token_hex(4)}"  # our user_id at Pelm
    try:
        token = pelm_client().connect_token(conn.label, settings("pelm")["utility_slug"] or None)
    except espi.ProviderError as err:
        conn.status, conn.reason = "failed", str(err)
        s.commit()
        return failed_page("Pelm", f"Pelm could not start connecting ({err.message}).")
    s.commit()
    session["pelm_connection"] = conn.id
    query = urlencode(
        {
            "connect_token": token,
            "redirect_uri": url_for("providers.pelm_callback", _external=True),
        }
    )
    return redirect(f"{settings('pelm')['connect_url']}?{query}")


@bp.get("/providers/pelm/callback")
def pelm_callback() -> Any:
    """Connect's answer: an authorization code (exchanged for the access token) or an exit."""
    s = db.session()
    conn_id = session.pop("pelm_connection", None)
    conn = s.get(db.Connection, conn_id) if conn_id is not None else None
    mine = conn is not None and conn.account_id == account().id
    if conn is None or not mine or conn.profile != "pelm" or conn.access_token:
        return failed_page(
            "Pelm", "This answer does not belong to a connection started in this browser."
        )
    if request.args.get("error") or not request.args.get("code"):
        conn.status, conn.reason = "failed", "left Pelm Connect before connecting an account"
        s.commit()
        return failed_page("Pelm", "You left Pelm Connect: nothing was shared.")
    try:
        tokens = pelm_client().exchange(request.args["code"])
    except espi.ProviderError as err:
        conn.status, conn.reason = "failed", str(err)
        s.commit()
        return failed_page("Pelm", f"Pelm did not complete the connection ({err.message}).")
    conn.access_token = vault.seal(str(tokens["access_token"]))
    conn.reason = "fetching data from Pelm"
    s.commit()
    current_app.extensions["tp.sync"](conn.id)
    return redirect(url_for("tp.home"))


def sync(conn: db.Connection) -> None:
    """Fetch a provider connection's new data and ingest it (job). Data the provider is still
    gathering (Pelm's ``data_unavailable``, WattzOn's running jobs), rate limits and outages are
    raised for the job to try again later (:mod:`.jobs`); other refusals mark the connection
    failed with the provider's message."""
    s = db.session()
    title = DEFAULTS[conn.profile]["title"]
    last = db.last_reading_start(db.UsagePoint.connection_id == conn.id)
    end = int(time.time())
    history = current_app.config["PROVIDER_HISTORY_DAYS"] * 86400
    start = (last - OVERLAP) if last is not None else end - history
    try:
        found = FETCHERS[conn.profile](conn, start, end, last is None)
    except espi.NotReady as err:
        raise espi.NotReady(
            f"{title} is still gathering this account's data ({err.message})",
            provider=conn.profile,
        ) from err
    except (espi.RateLimited, espi.Unavailable):
        raise
    except espi.ProviderError as err:
        conn.status, conn.reason = "failed", str(err)
        s.commit()
        log.error("connection %s: %s", conn.id, err)
        return
    if found is None:
        return
    feed, base = found
    doc = keep_feed(feed, f"{conn.profile}:{conn.label}", conn, base)
    ingest(s, doc)
    conn.status, conn.reason, conn.last_sync = "active", "", int(time.time())
    s.commit()


Fetched = tuple[espi.Feed, str] | None  # the feed and the provider's base URL


def fetch_pelm(conn: db.Connection, start: int, end: int, first: bool) -> Fetched:
    token = vault.unseal(conn.access_token)
    if not token:
        return None
    client = pelm_client()
    credentials = Credentials(account=conn.label, access_token=token)
    return client.fetch(credentials, start, end=end), client.base_url


def fetch_wattzon(conn: db.Connection, start: int, end: int, first: bool) -> Fetched:
    """The profile's data once its extraction jobs have ended (a job that failed fails the
    connection with what its status means); later syncs read the months since the last."""
    client = wattzon_client()
    credentials = Credentials(account=conn.label, extra={"jobs": conn.pending})
    try:
        feed = client.fetch(credentials, None if first else start)
    finally:
        conn.pending = credentials.extra.get("jobs", "")
    return feed, client.base_url


def fetch_griddy(conn: db.Connection, start: int, end: int, first: bool) -> Fetched:
    client = griddy_client()
    credentials = griddy_credentials(conn)
    feed = client.fetch(credentials, None if first else start)
    conn.access_token = vault.seal(credentials.access_token)  # renewed when it had expired
    return feed, client.base_url


FETCHERS: dict[str, Any] = {"pelm": fetch_pelm, "wattzon": fetch_wattzon, "griddy": fetch_griddy}


def disconnect(conn: db.Connection) -> str:
    """End a provider connection; what was done. WattzOn: the profile (with the credentials)
    is deleted; Griddy: signed out; Pelm documents no revocation: the token is forgotten."""
    done = "the stored access token was deleted"
    try:
        if conn.profile == "wattzon" and conn.label:
            done = wattzon_client().disconnect(Credentials(account=conn.label))
        elif conn.profile == "griddy" and conn.refresh_token:
            done = griddy_client().disconnect(griddy_credentials(conn))
    except espi.ProviderError as err:
        done = f"{DEFAULTS[conn.profile]['title']} refused to end the connection: {err.message}"
    conn.access_token = conn.refresh_token = None
    return done


def keep_feed(feed: espi.Feed, uri: str, conn: db.Connection, base: str) -> db.Document:
    """Keep a provider's Feed as a gzipped Green Button document (streamed) and record it."""
    with keeping() as out:
        espi.write(feed, out, espi.WriteOptions(base=f"{base}/espi/1_1/resource"))  # type: ignore[arg-type]
    return record(conn.profile, f"{uri}:{out.kept.sha256[:16]}", conn, out.kept)


# --------------------------------------------------------------------------- WattzOn


def provider_page(slug: str, **context: Any) -> Any:
    if not configured(slug):
        title = DEFAULTS[slug]["title"]
        abort(404, f"{title} is not configured (README: THIRDPARTY_PROVIDERS__{slug}__...)")
    status = 400 if context.get("error") else 200
    return render_template(f"{slug}_connect.html", **context), status


@bp.route("/providers/wattzon/connect", methods=["GET", "POST"])
def wattzon_connect() -> Any:
    """Pick the utility by ZIP code and give its website's credentials: WattzOn gets them
    encrypted, starts extracting bills and intervals, and the sync waits for the jobs."""
    zipcode = (request.values.get("zip") or "").strip()
    if not configured("wattzon"):
        return provider_page("wattzon")
    client = wattzon_client()
    utilities: list[tuple[int, str]] = []
    error = ""
    if zipcode:
        try:
            utilities = [(uid, str(client.utility(uid).get("name"))) for uid in
                         client.find_utilities(zipcode=zipcode)]  # fmt: skip
        except espi.ProviderError as err:
            error = "No utility found for that ZIP code." if err.status == 404 else err.message
    if request.method == "GET" or error:
        return provider_page("wattzon", zipcode=zipcode, utilities=utilities, error=error)
    form = request.form
    utility = int(form.get("utility") or 0)
    if utility not in dict(utilities) or not form.get("username") or not form.get("password"):
        error = "Choose your utility and give its website's username and password."
        return provider_page("wattzon", zipcode=zipcode, utilities=utilities, error=error)
    s = db.session()
    conn = db.Connection(profile="wattzon", account_id=account().id, status="waiting",
                         reason="WattzOn is extracting")  # fmt: skip
    s.add(conn)
    s.commit()
    try:  # a profile that cannot be completed is deleted again by connect()
        credentials = client.connect({**form, "label": f"tp-{conn.id}"})
        conn.label, conn.pending = credentials.account, credentials.extra["jobs"]
    except espi.ProviderError as err:
        conn.status, conn.reason = "failed", str(err)
        s.commit()
        return failed_page("WattzOn", f"WattzOn could not start ({err.message}).")
    conn.reason = f"WattzOn is extracting bills and intervals from {dict(utilities)[utility]}"
    s.commit()
    current_app.extensions["tp.sync"](conn.id)
    return redirect(url_for("tp.home"))


@bp.post("/providers/wattzon/notify")
@webhook
def wattzon_notify() -> Any:
    """WattzOn's SQS notification body (relayed from the queue): a job ended, so sync that
    profile's connection now. Unsigned, so it is only a hint: the sync asks WattzOn itself,
    over mutual TLS, how the jobs ended; a job announced twice is synced once."""
    s = db.session()

    def start(note: espi_wz.Notification) -> tuple[dict[str, str], int]:
        mine = (db.Connection.profile == "wattzon", db.Connection.label == str(note.profile_id))
        conn = s.scalars(select(db.Connection).where(*mine)).first()
        if conn is None:
            return {"status": "unknown profile"}, 404
        uri = f"wattzon:job:{note.job_id}"
        if s.scalars(select(db.Notification).where(db.Notification.uri == uri)).first():
            return {"status": "already seen"}, 200
        s.add(db.Notification(uri=uri, profile="wattzon", status="done"))
        s.commit()
        if conn.pending:  # the connection's sync is already waiting for its jobs
            return {"status": "sync already waiting"}, 200
        if conn.status != "revoked":
            current_app.extensions["tp.sync"](conn.id)
        return {"status": "sync queued"}, 202

    try:
        return espi_wz.on_notification(request.get_data(), start)
    except ValueError as err:
        return {"error": str(err)}, 400


# --------------------------------------------------------------------------- Griddy


@bp.route("/providers/griddy/connect", methods=["GET", "POST"])
def griddy_connect() -> Any:
    """Sign in with the Griddy member's email and password (kept only as tokens)."""
    if request.method == "GET" or not configured("griddy"):
        return provider_page("griddy")
    email = request.form.get("email", "").strip()
    try:
        credentials = griddy_client().connect(request.form)
    except FieldError as err:
        return provider_page("griddy", email=email, error=err.message)
    except espi.ProviderError as err:
        return provider_page("griddy", email=email, error=f"Griddy refused: {err.message}")
    s = db.session()
    conn = db.Connection(profile="griddy", account_id=account().id, status="waiting",
                         label=credentials.account, reason="fetching from Griddy")  # fmt: skip
    conn.access_token = vault.seal(credentials.access_token)
    conn.refresh_token = vault.seal(credentials.refresh_token)
    s.add(conn)
    s.commit()
    current_app.extensions["tp.sync"](conn.id)
    return redirect(url_for("tp.home"))
