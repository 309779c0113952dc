"""Data providers in the third-party app: Pelm connections beside Green Button ones, and
WattShift rate plans that price a usage point's readings.

A Pelm connection is a :class:`db.Connection` whose profile is ``pelm``, its access token sealed
like a custodian's. Its sync job fetches every account (:mod:`espi.providers.pelm`), keeps the
result as a Green Button document (gzipped, like a custodian's download) and ingests it, so the
data lands in the same tables and shows on the same pages, API and exports.

Configuration (``PROVIDERS`` in the config, or ``THIRDPARTY_PROVIDERS__pelm__client_id=...``):
``pelm``: base_url, connect_url (the Connect page; Pelm's widget in production), client_id,
secret, utility_slug; ``wattshift``: base_url, api_key.
"""

from __future__ import annotations

import logging
import secrets
import time
from decimal import Decimal
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
from sqlalchemy import func, select, update

import espi
from espi.providers import pelm as espi_pelm
from espi.providers import wattshift as espi_ws

from . import db, vault
from .custodian import Retry
from .documents import keeping, record
from .ingest import BATCH, ingest

log = logging.getLogger(__name__)
bp = Blueprint("providers", __name__)

SLUGS = ("pelm",)  # providers a customer connects through (connections' profile)
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
    "wattshift": {"title": "WattShift", "base_url": espi_ws.WattShift.default_base, "api_key": ""},
}
REQUIRED = {"pelm": ("client_id", "secret", "connect_url"), "wattshift": ("api_key",)}


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


def wattshift_client() -> espi_ws.WattShift:
    s = settings("wattshift")
    return espi_ws.WattShift(s["api_key"], base_url=s["base_url"])


def later(err: espi.ProviderError, delay: float | None = None) -> Retry:
    """A provider's passing refusal as a job retry: after ``delay``, else its Retry-After."""
    wait = delay if delay is not None else getattr(err, "retry_after", None)
    return Retry(str(err), err.status, err.body, wait)


def failed_page(title: str, text: str) -> tuple[str, int]:
    return render_template("failed.html", profile={"title": title}, error="", text=text), 400


# --------------------------------------------------------------------------- Pelm Connect


@bp.get("/providers/pelm/connect")
def pelm_connect() -> Any:
    """Start Pelm Connect: a connect token for a new connection, then Pelm's Connect page."""
    if not configured("pelm"):
        abort(404, "Pelm is not configured (see README: THIRDPARTY_PROVIDERS__pelm__...)")
    s = db.session()
    conn = db.Connection(profile="pelm", status="waiting", reason="waiting for Pelm Connect")
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
    if conn is None or conn.profile != "pelm" or conn.access_token:
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


def sync_pelm(conn: db.Connection) -> None:
    """Fetch a Pelm connection's new data and ingest it (job). Data still syncing at Pelm
    (``data_unavailable``), rate limits and outages are retried later; other refusals mark the
    connection failed with Pelm's message."""
    s = db.session()
    token = vault.unseal(conn.access_token)
    if not token:
        return
    last = db.last_reading_start(db.UsagePoint.connection_id == conn.id)
    end = int(time.time())
    history = current_app.config["PROVIDER_HISTORY_DAYS"] * 86400
    start = (last - OVERLAP) if last is not None else end - history
    client = pelm_client()
    try:
        feed = client.fetch(token, start=start, end=end)
    except espi.NotReady as err:
        conn.reason = "Pelm is still gathering this account's data; trying again shortly"
        s.commit()
        raise later(err, current_app.config["PROVIDER_NOT_READY_DELAY"]) from err
    except (espi.RateLimited, espi.Unavailable) as err:
        raise later(err) from err
    except espi.ProviderError as err:
        conn.status, conn.reason = "failed", str(err)
        s.commit()
        log.error("connection %s: %s", conn.id, err)
        return
    doc = keep_feed(feed, f"pelm:{conn.label}", conn, client.base_url)
    ingest(s, doc)
    conn.status, conn.reason, conn.last_sync = "active", "", int(time.time())
    s.commit()


def keep_feed(feed: espi.Feed, uri: str, conn: db.Connection, base: str) -> db.Document:
    """Keep a provider's Feed as a gzipped Green Button document (streamed) and record it."""
    with keeping() as out:
        espi.write(feed, out, espi.WriteOptions(base=f"{base}/espi/1_1/resource"))  # type: ignore[arg-type]
    return record(conn.profile, f"{uri}:{out.kept.sha256[:16]}", conn, out.kept)


# --------------------------------------------------------------------------- rate plans


@bp.post("/usage-points/<int:up_id>/pricing")
def attach_plan(up_id: int) -> Any:
    """Attach a WattShift rate plan (a home on that plan) to a usage point; pricing is queued."""
    s = db.session()
    up = s.get(db.UsagePoint, up_id)
    if up is None:
        abort(404)
    zipcode, plan = request.form.get("zip", ""), request.form.get("plan", "")
    client = wattshift_client()
    try:
        utility = next(
            (u for u in client.utilities(zipcode) if any(p.id == plan for p in u.rate_plans)), None
        )
        if utility is None:
            abort(400, f"rate plan {plan} is not offered at {zipcode}")
        name = next(p.name for p in utility.rate_plans if p.id == plan)
        home = client.create_home(up.title or f"Usage point {up.id}", zipcode, utility.id, plan)
    except espi.ProviderError as err:
        return failed_page("WattShift", f"WattShift refused: {err.message}")
    pricing = s.get(db.Pricing, up_id) or db.Pricing(usage_point_id=up_id)
    pricing.home_id, pricing.rate_plan = str(home["id"]), f"{utility.name} {name}"
    pricing.status, pricing.reason, pricing.updated = "pricing", "", int(time.time())
    s.add(pricing)
    s.commit()
    current_app.extensions["tp.price"](up_id)
    return redirect(url_for("tp.usage_point", up_id=up_id))


def rate_plans(zipcode: str) -> tuple[list[espi_ws.Utility], str]:
    """The rate plans offered at a ZIP code for the usage point page (and an error text)."""
    if not zipcode:
        return [], ""
    try:
        return wattshift_client().utilities(zipcode), ""
    except espi.ProviderError as err:
        return [], err.message


def price_usage_point(up_id: int) -> None:
    """Price every energy reading of a usage point on its attached rate plan (job): cost and
    TOU period from the home's 15-minute prices; exports at the export price."""
    s = db.session()
    pricing = s.get(db.Pricing, up_id)
    if pricing is None:
        return
    client = wattshift_client()
    priced = 0
    try:
        for mr in s.scalars(select(db.MeterReading).where(db.MeterReading.usage_point_id == up_id)):
            rt = mr.reading_type
            if rt is None or rt.uom != int(espi.UnitSymbolKind.WH):
                continue
            priced += price_meter_reading(s, client, pricing.home_id, mr.id, rt)
    except (espi.RateLimited, espi.Unavailable) as err:
        s.rollback()
        raise later(err) from err
    except espi.ProviderError as err:
        s.rollback()
        pricing.status, pricing.reason = "failed", str(err)
        s.commit()
        return
    pricing.status, pricing.priced, pricing.updated = "priced", priced, int(time.time())
    s.commit()


def price_meter_reading(
    s: Any, client: espi_ws.WattShift, home: str, mr_id: int, rt: db.ReadingType
) -> int:
    span = s.execute(
        select(func.min(db.Reading.start), func.max(db.Reading.start + db.Reading.duration)).where(
            db.Reading.meter_reading_id == mr_id
        )
    ).one()
    if span[0] is None:
        return 0
    signal = client.price_signal_between(home, int(span[0]), int(span[1]))
    export = rt.flow_direction == int(espi.FlowDirectionKind.REVERSE)
    priced, after = 0, int(span[0]) - 1
    while True:  # a page of readings at a time: memory stays flat however long the history
        page = s.execute(
            select(db.Reading.start, db.Reading.duration, db.Reading.value)
            .where(db.Reading.meter_reading_id == mr_id, db.Reading.start > after)
            .order_by(db.Reading.start)
            .limit(BATCH)
        ).all()
        if not page:
            break
        changes = []
        for start, duration, value in page:
            kwh = Decimal(value).scaleb(rt.power_of_ten - 3)
            found = espi_ws.cost_of(signal, start, duration, kwh, export=export)
            if found is not None:
                changes.append(
                    {"meter_reading_id": mr_id, "start": start, "cost": found[0], "tou": found[1]}
                )
        if changes:
            s.execute(update(db.Reading), changes)
        priced += len(changes)
        after = page[-1][0]
    if rt.currency is None:
        rt.currency = int(espi.Currency.USD)
    return priced
