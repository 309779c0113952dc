"""WattShift rate plans that price a usage point's readings: a customer picks a plan offered at
a ZIP code (a WattShift home on that plan is made), and a job prices the usage point's energy
readings with the home's price signal."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from flask import Blueprint, abort, current_app, redirect, request, url_for
from sqlalchemy import func, select, tuple_, update

import espi
from espi.providers import wattshift as espi_ws

from . import accounts, db
from .ingest import BATCH
from .providers import failed_page, wattshift_client

bp = Blueprint("pricing", __name__)


@bp.post("/usage-points/<int:up_id>/pricing")
def attach_plan(up_id: int) -> Any:
    """Attach a WattShift rate plan (a home on that plan) to a usage point; pricing is queued."""
    s = db.session()
    up = accounts.usage_point(up_id)
    accounts.owner_only(s.get(db.Connection, up.connection_id))  # not an operator's choice
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
    except (espi.RateLimited, espi.Unavailable):
        raise  # tried again later (jobs)
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
    priced, after = 0, (int(span[0]) - 1, 0)
    while True:  # a page of readings at a time: memory stays flat however long the history
        page = s.execute(
            select(db.Reading.start, db.Reading.seq, db.Reading.duration, db.Reading.value)
            .where(
                db.Reading.meter_reading_id == mr_id,
                tuple_(db.Reading.start, db.Reading.seq) > after,
            )
            .order_by(db.Reading.start, db.Reading.seq)
            .limit(BATCH)
        ).all()
        if not page:
            break
        changes = []
        for start, seq, duration, value in page:
            if value is None:  # no value given: nothing to price
                continue
            kwh = Decimal(value).scaleb(rt.power_of_ten - 3)
            found = espi_ws.cost_of(signal, start, duration, kwh, export=export)
            if found is not None:
                key = {"meter_reading_id": mr_id, "start": start, "seq": seq}
                changes.append({**key, "cost": found[0], "tou": found[1]})
        if changes:
            s.execute(update(db.Reading), changes)
        priced += len(changes)
        after = (page[-1][0], page[-1][1])
    if rt.currency is None:
        rt.currency = int(espi.Currency.USD)
    return priced
