"""The third party's web endpoints: the Notification webhook, connecting a customer (OAuth),
disconnecting (and deleting data), uploads, and the pages. Every page shows the signed-in
account's own data only (operators: everyone's), through :mod:`.accounts`."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import func, select

import espi
from appkit.http import problem
from espi.lint import lint

from . import accounts, db, erase, profiles, providers, rows
from .accounts import account, webhook
from .custodian import save_tokens
from .documents import keeping, record
from .ingest import ingest
from .jobs import enqueue_fetch, enqueue_sync

log = logging.getLogger(__name__)
bp = Blueprint("tp", __name__)
NOTIFICATION_LIMIT = 1 << 20


def init_app(app: Flask) -> None:
    from .api import bp as api

    app.extensions["tp.oauth"] = OAuth(app)  # one registry per app: profiles differ between apps
    accounts.init_app(app)
    app.register_blueprint(bp)
    app.register_blueprint(api)
    app.register_blueprint(providers.bp)


def oauth_client(profile: profiles.Profile) -> Any:
    """The Authlib client of a custodian profile (registered on first use)."""
    oauth = current_app.extensions["tp.oauth"]
    client = oauth.create_client(profile.name)
    if client is None:
        kwargs: dict[str, Any] = {"token_endpoint_auth_method": "client_secret_basic"}
        if profile.scope:
            kwargs["scope"] = profile.scope
        if profile.pkce:
            kwargs["code_challenge_method"] = "S256"
        if profile.cert:  # mutual TLS for the code exchange too, as for every custodian call
            kwargs["cert"] = profile.cert
        if profile.ca_bundle:
            kwargs["verify"] = profile.ca_bundle
        client = oauth.register(
            profile.name,
            client_id=profile.client_id,
            client_secret=profile.client_secret,
            authorize_url=profile.authorize_url,
            access_token_url=profile.token_url,
            client_kwargs=kwargs,
        )
    return client


# --------------------------------------------------------------------------- notifications


@bp.post("/espi/1_1/Notification")
@webhook
def notification() -> Response:
    """A custodian says data is ready: record each URI once, queue its download, answer 200.
    URIs outside every configured custodian's resource base are refused (never fetched)."""
    try:
        batch = espi.parse(
            request.get_data(), espi.ParseOptions(warn=False, max_bytes=NOTIFICATION_LIMIT)
        ).batch_list
    except espi.ParseError as err:
        log.warning("notification refused: %s", err)
        return refuse(400, f"not a BatchList: {err}")
    if batch is None:
        return refuse(400, "not a BatchList")
    owners = {uri: profiles.owning(uri) for uri in batch.resources}
    foreign = [uri for uri, owner in owners.items() if owner is None]
    if foreign:
        log.warning("notification refused: URIs of no configured custodian: %s", foreign)
        return refuse(400, f"URIs of no configured custodian: {', '.join(foreign[:3])}")
    s = db.session()
    for uri, owner in owners.items():
        if s.scalar(select(db.Notification).where(db.Notification.uri == uri)) is not None:
            continue  # announced before: nothing new
        note = db.Notification(uri=uri, profile=owner.name)  # type: ignore[union-attr]
        s.add(note)
        s.commit()
        enqueue_fetch(note.id)
    return Response(status=200)


def refuse(status: int, description: str) -> Response:
    return problem(status, "invalid_request", description)


# --------------------------------------------------------------------------- connecting


@bp.get("/connect/<name>")
def connect(name: str) -> Any:
    try:
        profile = profiles.get(name)
    except KeyError as err:
        abort(404, str(err))
    return oauth_client(profile).authorize_redirect(
        url_for("tp.callback", name=name, _external=True)
    )


@bp.get("/callback/<name>")
def callback(name: str) -> Any:
    try:
        profile = profiles.get(name)
    except KeyError as err:
        abort(404, str(err))
    if request.args.get("error"):
        return failed(
            profile, request.args.get("error", ""), request.args.get("error_description", "")
        )
    try:
        token = oauth_client(profile).authorize_access_token()
    except OAuthError as err:
        return failed(profile, err.error, err.description or "")
    except (ValueError, requests.RequestException) as err:  # not even an OAuth answer
        log.warning("token exchange with %s failed: %s", profile.name, err)
        return failed(profile, "token_exchange_failed", token_failure(err))
    s = db.session()
    conn = db.Connection(profile=name, account_id=account().id)
    save_tokens(conn, token)
    s.add(conn)
    s.commit()
    enqueue_sync(conn.id)
    return redirect(url_for("tp.home"))


def token_failure(err: Exception) -> str:
    resp = getattr(err, "response", None)  # a requests.Response is falsy when it is a 4xx
    detail = f"HTTP {resp.status_code}: {resp.text[:200]}" if resp is not None else str(err)
    return f"Your utility did not complete the connection ({detail}). Please try again later."


def failed(profile: profiles.Profile, error: str, description: str) -> tuple[str, int]:
    reasons = {
        "access_denied": "You chose not to share your data. Nothing was shared.",
        "mismatching_state": "The answer from your utility did not match this browser's request "
        "(an old or a forged link). Please start again.",
    }
    text = reasons.get(error, description or error)
    return render_template("failed.html", profile=profile, error=error, text=text), 400


@bp.route("/connections/<int:conn_id>/disconnect", methods=["GET", "POST"])
def disconnect(conn_id: int) -> Any:
    """Stop sharing (the authorization is revoked at the custodian, or ended at the provider),
    and, when the customer asks, delete what the connection brought. Asks first."""
    conn = accounts.connection(conn_id)
    erasing = request.values.get("delete_data") == "yes"
    if request.method == "POST":
        accounts.owner_only(conn)  # operators see the customer's sharing; they do not end it
    if request.method == "GET":
        return render_template(
            "disconnect.html",
            c=conn,
            title=source_title(conn.profile),
            counts=connection_counts([conn.id]),
        )
    try:
        done = erase.end(conn) if conn.status != "revoked" else ""
    except erase.NotEnded as err:
        db.session().commit()  # the reason is kept
        flash(
            f"{source_title(conn.profile)} could not be reached to stop the sharing ({err}). "
            "Nothing was changed: try again later.",
            "error",
        )
        return redirect(url_for("tp.connections"))
    files: set[str] = set()
    if erasing:
        files = erase.connection(conn)
        flash(f"{source_title(conn.profile)}: {done + '; ' if done else ''}its data was deleted.")
    else:
        flash(
            f"{source_title(conn.profile)} disconnected: {done or 'no longer shared'}. "
            "Its data stays here until you delete it."
        )
    db.session().commit()
    erase.remove_files(files)
    return redirect(url_for("tp.connections"))


@bp.route("/account/delete", methods=["GET", "POST"])
def delete_account() -> Any:
    """Delete the account: every sharing is ended at its source first, then all its data,
    documents and API keys, then the account. Asks for the password first."""
    me = account()
    conns = list(
        db.session().scalars(select(db.Connection).where(db.Connection.account_id == me.id))
    )
    if request.method == "GET":
        return render_template(
            "delete_account.html",
            connections=conns,
            counts=connection_counts([c.id for c in conns]),
            titles={c.profile: source_title(c.profile) for c in conns},
        )
    if accounts.too_many_attempts(me.email) or not accounts.password_matches(
        me, request.form.get("password", "")
    ):
        flash("That is not your password: nothing was deleted.", "error")
        return redirect(url_for("tp.delete_account"))
    try:
        files = erase.account(me)
    except erase.NotEnded as err:
        db.session().commit()  # sharing that did end is recorded as ended
        flash(
            f"A utility could not be reached to stop sharing ({err}); nothing was deleted. "
            "Try again later.",
            "error",
        )
        return redirect(url_for("tp.delete_account"))
    db.session().commit()
    erase.remove_files(files)
    accounts.sign_out()
    flash(
        "Your account and all its data were deleted; every utility and provider was told "
        "to stop sharing."
    )
    return redirect(url_for("accounts.login"))


def source_title(profile: str) -> str:
    if profile == "upload":
        return "Uploaded file"
    if profile in providers.SLUGS:
        return providers.DEFAULTS[profile]["title"]
    found = profiles.all_profiles().get(profile)
    return found.title if found else profile


STATES = {
    "active": "Active",
    "waiting": "Waiting for data",
    "revoked": "Revoked",
    "failed": "Failed",
}


def connection_counts(ids: list[int]) -> dict[int, int]:
    """Readings stored per connection."""
    if not ids:
        return {}
    return dict(
        db.session()
        .execute(
            select(db.UsagePoint.connection_id, func.count(db.Reading.start))
            .join(db.MeterReading, db.MeterReading.usage_point_id == db.UsagePoint.id)
            .join(db.Reading, db.Reading.meter_reading_id == db.MeterReading.id)
            .where(db.UsagePoint.connection_id.in_(ids))
            .group_by(db.UsagePoint.connection_id)
        )
        .all()
    )


def connections_context() -> dict[str, Any]:
    conns = list(
        db.session().scalars(accounts.connections_query().order_by(db.Connection.id.desc()))
    )
    return {
        "connections": conns,
        "counts": connection_counts([c.id for c in conns]),
        "titles": {c.profile: source_title(c.profile) for c in conns},
        "states": STATES,
    }


@bp.app_template_filter("datetime")
def datetime_filter(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


@bp.get("/")
def home() -> str:
    s = db.session()
    return render_template(
        "home.html",
        profiles=profiles.all_profiles().values(),
        provider_links=[
            (slug, providers.DEFAULTS[slug]["title"])
            for slug in providers.SLUGS
            if providers.configured(slug)
        ],
        usage_points=list(s.scalars(accounts.usage_points_query().order_by(db.UsagePoint.id))),
        kinds={int(k): k.label for k in espi.ServiceKind},
        **connections_context(),
    )


@bp.get("/connections")
def connections() -> str:
    """Every authorization with its state (active, waiting, revoked, failed) and the reason."""
    return render_template("connections.html", **connections_context())


def freshness(s: Any, row: db.UsagePoint) -> str:
    """How recent the data is and where it has holes: "Data up to ...; gaps: ..."."""
    zone = ZoneInfo(row.zone) if row.zone else UTC
    gaps, longest, last_end, last_start = 0, 0, None, None
    for mr in row.meter_readings:
        previous_end = None
        query = select(db.Reading.start, db.Reading.duration).where(
            db.Reading.meter_reading_id == mr.id
        )
        for start, duration in s.execute(query.order_by(db.Reading.start)):
            if previous_end is not None and start > previous_end:
                gaps += 1
                longest = max(longest, start - previous_end)
            previous_end = start + duration
            last_start = start if last_start is None else max(last_start, start)
        if previous_end is not None:
            last_end = previous_end if last_end is None else max(last_end, previous_end)
    if last_end is None:
        return "No readings yet."
    up_to = datetime.fromtimestamp(last_end, zone).strftime("%Y-%m-%d %H:%M")
    holes = (
        f"gaps: {gaps}, the longest {longest // 3600} h {longest % 3600 // 60} min"
        if gaps
        else "gaps: none"
    )
    return f"Data up to {up_to} ({row.zone or 'UTC'}); {holes}."


@bp.get("/usage-points/<int:up_id>")
def usage_point(up_id: int) -> str:
    """A usage point: its readings in a chart (JSON API + uPlot), downloads, bills."""
    s = db.session()
    row = accounts.usage_point(up_id)
    last = db.last_reading_start(db.UsagePoint.id == up_id)
    end = datetime.fromtimestamp(last or time.time(), UTC).date()
    start = end - timedelta(days=6)
    bills = []
    for bill in reversed(rows.bills(s, up_id)):  # newest first
        currency = espi.Currency(bill.currency).label if bill.currency is not None else ""
        period = bill.start, bill.end
        bills.append(
            {
                "period": " to ".join(f"{datetime.fromtimestamp(t, UTC):%Y-%m-%d}" for t in period),
                "amount": f"{(bill.amount or 0) / espi.model.COST_SCALE:,.2f} {currency}",
                "charges": ", ".join(
                    f"{li.note}: {(li.amount or 0) / espi.model.COST_SCALE:,.2f}"
                    for li in bill.line_items
                ),
            }
        )
    twice = s.scalar(  # readings stored beside another at their start (see db.Reading)
        select(func.count())
        .select_from(db.Reading)
        .join(db.MeterReading)
        .where(db.MeterReading.usage_point_id == up_id, db.Reading.seq > 0)
    )
    kind = espi.ServiceKind(row.kind).label if row.kind is not None else "service kind not given"
    zipcode = request.args.get("zip", "")
    plans, plans_error = providers.rate_plans(zipcode)
    return render_template(
        "usage_point.html",
        pricing=s.get(db.Pricing, up_id),
        pricing_available=providers.configured("wattshift"),
        zipcode=zipcode,
        plans=plans,
        plans_error=plans_error,
        up=row,
        kind=kind,
        freshness=freshness(s, row),
        twice=twice,
        series=row.meter_readings,
        bills=bills,
        start=start.isoformat(),
        end=end.isoformat(),
    )


# --------------------------------------------------------------------------- uploads


@bp.route("/upload", methods=["GET", "POST"])
def upload() -> Any:
    """A Green Button file (Download My Data): kept, checked (schema and lint), and ingested
    like the data a custodian sends, so it shows on the same pages."""
    if request.method == "GET":
        return render_template("upload.html")
    sent = request.files.get("file")
    if sent is None or not sent.filename:
        return render_template(
            "upload.html", error="Choose a Green Button file (XML) to upload."
        ), 400
    data = sent.read()
    with keeping() as out:
        out.write(data)
    try:
        problems = espi.validate(data)
        findings = lint(data)
    except espi.ParseError as err:
        return render_template("upload.html", error=f"{sent.filename}: {err.message}"), 400
    s = db.session()
    conn = upload_connection(sent.filename, out.kept.sha256)
    doc = record("upload", f"upload:{out.kept.sha256[:16]}", conn, out.kept)
    ingest(s, doc)
    ups = s.scalars(select(db.UsagePoint).where(db.UsagePoint.connection_id == conn.id)).all()
    return render_template(
        "upload.html",
        name=sent.filename,
        problems=problems,
        findings=findings,
        usage_points=ups,
        readings=doc.readings,
    )


def upload_connection(filename: str, sha256: str) -> db.Connection:
    """The account's connection for an uploaded file: the same file uploaded again is the same
    source (its rows are updated, not doubled)."""
    s = db.session()
    conn = s.scalar(
        select(db.Connection)
        .join(db.Document, db.Document.connection_id == db.Connection.id)
        .where(
            db.Connection.account_id == account().id,
            db.Connection.profile == "upload",
            db.Document.sha256 == sha256,
        )
    )
    if conn is None:
        conn = db.Connection(account_id=account().id, profile="upload", status="active")
        s.add(conn)
    conn.label, conn.last_sync = filename[:200], int(time.time())
    s.commit()
    return conn
