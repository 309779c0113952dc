"""The third party's web endpoints: disconnecting (and deleting data), retrying what failed,
and the pages (connecting is :mod:`.providers`', the Notification webhook :mod:`.webhook`'s).
Every page shows the signed-in account's own data only (operators: everyone's), through
:mod:`.accounts`."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

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
from flask_wtf.csrf import CSRFError
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

import espi
from appkit.http import problem

from . import accounts, db, display, erase, jobs, pricing, providers, rows, uploads
from .accounts import account
from .db import ConnectionState, NotificationState

log = logging.getLogger(__name__)
bp = Blueprint("tp", __name__)


def init_app(app: Flask) -> None:
    from .api import bp as api

    accounts.init_app(app)
    app.register_blueprint(bp)
    app.register_blueprint(uploads.bp)
    app.register_blueprint(api)
    app.register_blueprint(providers.bp)
    app.register_blueprint(pricing.bp)
    app.register_error_handler(OperationalError, database_trouble)
    app.register_error_handler(HTTPException, http_error)


# --------------------------------------------------------------------------- errors

#: where machines are answered (the JSON API, the custodians' and providers' webhooks)
MACHINE_PATHS = ("/api/", "/espi/", "/providers/")
#: an error page: its heading, and what to do next, by status
ERROR_PAGES = {
    400: ("This request could not be understood", "Go back, check what you entered and try again."),
    401: ("Sign in to go on", "Your session has ended: sign in, then try again."),
    403: ("You cannot do this", "Go back: nothing was changed."),
    404: (
        "Page not found",
        "The address may be mistyped or out of date, or the page belongs to another account. "
        "Start again from the home page.",
    ),
    405: (
        "This page cannot be opened that way",
        "Use the links and buttons of the app's pages rather than typing the address.",
    ),
    413: ("The file is too large", "Upload a file of at most {limit}."),
    429: ("Too many requests", "Wait a minute, then try again."),
    500: (
        "Something went wrong on our side",
        "It was recorded for us to look at. Try again in a moment.",
    ),
    503: ("The service is busy", "Try again in a few seconds."),
}
#: a form without its CSRF token, or with an old one (signed out and in since), or another site's
FORM_REFUSED = (
    "This form was not accepted: it is out of date, or it was not sent from this app's own "
    "page. Reload the page and send it again."
)


def for_machine() -> bool:
    """An answer for a machine: the API, the webhooks, a page's script that asks for JSON."""
    if request.path.startswith(MACHINE_PATHS):
        return True
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == (
        "application/json"
    )


def failure(
    status: int, error: str, description: str, headers: Any = None, reason: str = ""
) -> Response:
    """An error answer: the problem JSON to machines; to people a page in the app's layout that
    says what happened and what to do (``reason``: a sentence for people; never internals)."""
    if for_machine():
        return problem(status, error, description, headers=headers)
    heading, then = ERROR_PAGES.get(status) or ERROR_PAGES[500 if status >= 500 else 400]
    limit = int(current_app.config["MAX_CONTENT_LENGTH"] or 0)
    size = f"{limit >> 20:,} MB" if limit >= 1 << 20 else f"{limit >> 10:,} KB"
    then = then.format(limit=size)
    page = render_template("error.html", heading=heading, reason=reason, then=then)
    return Response(page, status, headers=headers)


def http_error(err: HTTPException) -> Response:
    """An HTTP error (``abort(404)``, a route that does not exist, a form without its CSRF
    token, a file over ``MAX_CONTENT_LENGTH``, an error of ours): a page or a problem
    (:func:`failure`). The reason given to ``abort`` is shown for a 400 or a 403 (written for
    the person), not werkzeug's defaults."""
    status = err.code or 500
    if status >= 500:
        db.session().rollback()  # the page reads the account: no failed transaction in its way
    reason = ""
    if isinstance(err, CSRFError):
        reason = FORM_REFUSED
    elif status in (400, 403) and err.description != type(err).description:
        reason = str(err.description or "")
    headers = [(k, v) for k, v in err.get_headers() if k.lower() != "content-type"]
    error = (err.name or "error").lower().replace(" ", "_")
    return failure(status, error, str(err.description or ""), headers, reason)


def database_trouble(err: OperationalError) -> Response:
    """SQLite busy (another process writes too long): a 503 to try again, never a 500 page."""
    db.session().rollback()
    if db.busy(err):
        log.warning("database busy: %s %s answered 503", request.method, request.path)
        return failure(503, "temporarily_unavailable", db.BUSY, headers={"Retry-After": "5"})
    log.error("database error on %s %s", request.method, request.path, exc_info=err)
    return failure(500, "server_error", "a database error (see the server's log)")


# --------------------------------------------------------------------------- retrying


@bp.post("/connections/<int:conn_id>/retry")
def retry_connection(conn_id: int) -> Any:
    """Try a failed connection again: its sync, with all its attempts (the customer's, or an
    operator's). Failed downloads have a Retry of their own: a notified URI is anyone's word,
    so it is asked again only when someone chooses it."""
    conn = accounts.connection(conn_id)
    title = source_title(conn.profile)
    if conn.status == ConnectionState.REVOKED:
        flash(f"{title} was disconnected: connect it again instead.", "error")
        return redirect(url_for("tp.connections"))
    if not conn.connected:
        flash(f"{title} was never connected: authorize it again instead.", "error")
        return redirect(url_for("tp.connections"))
    if conn.status == ConnectionState.FAILED:
        conn.status = ConnectionState.WAITING
    conn.reason, conn.attempts = "trying again", 0
    db.session().commit()
    jobs.enqueue("sync", conn.id, 0)
    flash(f"{title}: trying again.")
    return redirect(url_for("tp.connections"))


@bp.post("/notifications/<int:note_id>/retry")
def retry_notification(note_id: int) -> Any:
    """Try a failed download again (one of the account's connections; any, for an operator)."""
    s = db.session()
    query = select(db.Notification).where(db.Notification.id == note_id)
    if not accounts.is_operator():
        query = query.join(db.Connection, db.Notification.connection_id == db.Connection.id)
        query = accounts.visible(query)
    note = s.scalar(query)
    if note is None:
        abort(404, f"no notification {note_id}")
    note.status, note.error, note.attempts, note.retry_at = NotificationState.QUEUED, "", 0, 0
    s.commit()
    jobs.enqueue("fetch", note.id, 0)
    flash(f"Downloading {note.uri} again.")
    return redirect(url_for("tp.connections"))


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
        done = erase.end(conn) if conn.status != ConnectionState.REVOKED else ""
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
            titles=titles(conns),
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


source_title = providers.title_of


def titles(conns: list[db.Connection]) -> dict[str, str]:
    """The sources of connections, in words, by profile."""
    return {profile: source_title(profile) for profile in {c.profile for c in conns}}


STATES = {
    ConnectionState.CONNECTING: "Connecting",
    ConnectionState.ACTIVE: "Active",
    ConnectionState.WAITING: "Waiting for data",
    ConnectionState.REVOKED: "Revoked",
    ConnectionState.FAILED: "Failed",
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
    ups = usage_points_of([c.id for c in conns])
    return {
        "connections": conns,
        "by_id": {c.id: c for c in conns},
        "counts": connection_counts([c.id for c in conns]),
        "titles": titles(conns),
        "states": STATES,
        "failures": failed_downloads(),
        "services": {c: services(found) for c, found in ups.items()},
        "offered": {src.name: src for src in providers.offered()},
    }


def usage_points_of(ids: list[int]) -> dict[int, list[db.UsagePoint]]:
    """The usage points of connections, by connection."""
    out: dict[int, list[db.UsagePoint]] = {}
    if ids:
        query = select(db.UsagePoint).where(db.UsagePoint.connection_id.in_(ids))
        for up in db.session().scalars(query.order_by(db.UsagePoint.id)):
            out.setdefault(up.connection_id, []).append(up)
    return out


def services(ups: list[db.UsagePoint]) -> str:
    """What a connection brings, in words: "electricity (2), gas"."""
    kinds: dict[str, int] = {}
    for up in ups:
        kind = display.service_kind(up) or "other"
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{k} ({n})" if n > 1 else k for k, n in kinds.items())


@bp.get("/connections/status")
def connections_status() -> Response:
    """The account's connections' states as JSON, for pages that show data arriving
    (``static/connections.js`` polls it while a connection waits for data)."""
    found = connections_context()
    body = [
        {
            "id": c.id,
            "status": c.status,
            "state": STATES.get(c.status, c.status),
            "reason": display.reason(c, found["titles"].get(c.profile, c.profile)),
            "readings": found["counts"].get(c.id, 0),
            "last_sync": c.last_sync,
        }
        for c in found["connections"]
    ]
    return Response(json.dumps(body), mimetype="application/json")


def failed_downloads() -> list[db.Notification]:
    """The downloads that failed, of the account's connections (an operator: all of them,
    Bulk documents included), newest first."""
    query = select(db.Notification).where(db.Notification.status == NotificationState.FAILED)
    if not accounts.is_operator():
        query = accounts.visible(
            query.join(db.Connection, db.Notification.connection_id == db.Connection.id)
        )
    return list(db.session().scalars(query.order_by(db.Notification.id.desc()).limit(50)))


@bp.app_template_filter("datetime")
def datetime_filter(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


@bp.app_template_filter("localmonth")
def local_month(epoch: int, up: db.UsagePoint) -> str:
    """A month by its first second, in the usage point's zone: "March 2026"."""
    return f"{datetime.fromtimestamp(epoch, rows.zone(up)):%B %Y}"


@bp.app_context_processor
def formats() -> dict[str, Any]:
    """What every template may use to show names and numbers (:mod:`.display`)."""
    return {
        "money": display.money,
        "versus": display.versus,
        "quantity": display.quantity,
        "usage_point_name": display.usage_point_name,
        "service_kind": display.service_kind,
        "customer_facts": display.customer_facts,
        "connection_reason": display.reason,
    }


@bp.get("/")
def home() -> str:
    s = db.session()
    return render_template(
        "home.html",
        sources=providers.offered(),
        usage_points=list(s.scalars(accounts.usage_points_query().order_by(db.UsagePoint.id))),
        **connections_context(),
    )


@bp.get("/connections")
def connections() -> str:
    """Every authorization with its state (active, waiting, revoked, failed) and the reason."""
    return render_template("connections.html", **connections_context())


def freshness(s: Any, row: db.UsagePoint) -> str:
    """How recent the data is and where it has holes: "Data up to ...; gaps: ..." (each meter
    reading's readings in time order through :class:`espi.Timeline`)."""
    zone = rows.zone(row)
    gaps, longest, last_end = 0, 0, None
    for mr in row.meter_readings:
        timeline = espi.Timeline()
        query = select(db.Reading.start, db.Reading.duration).where(
            db.Reading.meter_reading_id == mr.id
        )
        for start, duration in s.execute(query.order_by(db.Reading.start, db.Reading.seq)):
            timeline.add(start, duration)
        gaps += timeline.gaps
        if timeline.longest_gap is not None:
            longest = max(longest, timeline.longest_gap.seconds)
        if timeline.last_end is not None:
            last_end = timeline.last_end if last_end is None else max(last_end, timeline.last_end)
    if last_end is None:
        return "No readings yet."
    up_to = datetime.fromtimestamp(last_end, zone).strftime("%Y-%m-%d %H:%M")
    if longest >= 2 * 86400:
        size = f"{longest / 86400:,.0f} days"
    else:
        size = f"{longest // 3600} h {longest % 3600 // 60} min"
    holes = f"gaps: {gaps:,}, the longest {size}" if gaps else "gaps: none"
    return f"Data up to {up_to} ({row.zone or 'UTC'}); {holes}."


def bill_rows(s: Any, up_id: int, zone: Any) -> list[dict[str, Any]]:
    """A usage point's bills, newest first, as the page lists them: the period in local days,
    the amount and each charge in currency."""
    out = []
    for bill in reversed(rows.bills(s, up_id)):
        currency = espi.Currency(bill.currency).label if bill.currency is not None else "USD"
        first = datetime.fromtimestamp(bill.start, zone)
        last = datetime.fromtimestamp(max(bill.start, bill.end - 1), zone)  # the end is excluded
        used = None
        if bill.consumption is not None and bill.consumption_uom == int(espi.UnitSymbolKind.WH):
            used = Decimal(bill.consumption).scaleb((bill.consumption_power_of_ten or 0) - 3)
        out.append(
            {
                "period": f"{first:%b} {first.day}, {first:%Y} – {last:%b} {last.day}, {last:%Y}",
                "amount": display.money(bill.amount, currency),
                "used": display.quantity(used) if used is not None else "",
                "charges": [
                    (li.note or "Charge", display.money(li.amount, currency))
                    for li in bill.line_items
                ],
            }
        )
    return out


@bp.get("/usage-points/<int:up_id>")
def usage_point(up_id: int) -> str:
    """A usage point: its energy and costs by period in charts (JSON API + uPlot), downloads,
    rate plans, bills."""
    s = db.session()
    row = accounts.usage_point(up_id)
    zone = rows.zone(row)
    last = db.last_reading_start(db.UsagePoint.id == up_id)
    end = datetime.fromtimestamp(last or time.time(), zone).date()  # the last reading's day
    start = end - timedelta(days=6)  # and the six before: a week of whole local days
    twice = s.scalar(  # readings stored beside another at their start (see db.Reading)
        select(func.count())
        .select_from(db.Reading)
        .join(db.MeterReading)
        .where(db.MeterReading.usage_point_id == up_id, db.Reading.seq > 0)
    )
    conn = s.get(db.Connection, row.connection_id)
    return render_template(
        "usage_point.html",
        up=row,
        name=display.usage_point_name(row),
        kind=display.service_kind(row) or "service kind not given",
        facts=display.customer_facts(conn),
        source=source_title(conn.profile) if conn is not None else "",
        plans=pricing.plans_of(up_id),
        pricing_available=providers.configured("wattshift"),
        freshness=freshness(s, row),
        twice=twice,
        bills=bill_rows(s, up_id, zone),
        start=start.isoformat(),
        end=end.isoformat(),
    )
