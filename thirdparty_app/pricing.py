"""Rate plans: what a usage point's energy would cost on plans the customer picks, beside what
the utility charged. A plan offered at a ZIP code becomes a WattShift home on that plan; a job
prices the usage point's energy readings with the home's price signal. Any number of plans per
usage point; each plan's estimates are :class:`db.PlanCost` rows, never a reading's ``cost``
(the utility's own), and :func:`compare` sets them side by side for a period: in total, by
month and by time-of-use period."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import delete, func, insert, select, tuple_, update

import espi
from espi.providers import wattshift as espi_ws

from . import accounts, db, queueing, rows
from .buckets import estimate_of, period, sums
from .db import PricingState
from .display import usage_point_name
from .ingest import BATCH
from .providers import configured, failed_page, wattshift_client

bp = Blueprint("pricing", __name__)
UTILITY = "utility"  # the comparison's column of the utility's own costs


def plans_of(up_id: int) -> list[db.RatePlan]:
    """A usage point's plans on its comparison (not those removed)."""
    query = select(db.RatePlan).where(
        db.RatePlan.usage_point_id == up_id, db.RatePlan.status != PricingState.REMOVED
    )
    return list(db.session().scalars(query.order_by(db.RatePlan.id)))


@bp.post("/usage-points/<int:up_id>/pricing")
def attach_plan(up_id: int) -> Any:
    """Add a WattShift rate plan (a home on that plan) to a usage point's plans (chosen again,
    removed or not: priced again on the home made the first time); pricing is queued."""
    s = db.session()
    up = accounts.usage_point(up_id)
    accounts.owner_only(s.get(db.Connection, up.connection_id))  # not an operator's choice
    zipcode, plan = request.form.get("zip", ""), request.form.get("plan", "")
    row = s.scalar(
        select(db.RatePlan).where(db.RatePlan.usage_point_id == up_id, db.RatePlan.plan == plan)
    )
    if row is None:
        client = wattshift_client()
        try:
            utility = next(
                (u for u in client.utilities(zipcode) if any(p.id == plan for p in u.rate_plans)),
                None,
            )
            if utility is None:
                abort(400, f"rate plan {plan} is not offered at {zipcode}")
            name = next(p.name for p in utility.rate_plans if p.id == plan)
            home = client.create_home(up.title or f"Usage point {up.id}", zipcode, utility.id, plan)
        except espi.ProviderError as err:
            return failed_page("WattShift", f"WattShift refused: {err.message}")
        row = db.RatePlan(usage_point_id=up_id, plan=plan, name=f"{utility.name} {name}",
                          home_id=str(home["id"]))  # fmt: skip
        s.add(row)
    row.status, row.reason, row.updated = PricingState.PRICING, "", int(time.time())
    s.commit()
    queueing.enqueue("price", up_id)
    flash(f"{row.name}: pricing your readings; the comparison fills in when it is done.")
    return back_to_comparison(up_id)


@bp.post("/usage-points/<int:up_id>/pricing/remove")
def remove_plan(up_id: int) -> Any:
    """Drop one of a usage point's plans and its estimates (the form's ``plan``: its id); its
    row stays, removed, with the WattShift home made for it (WattShift deletes no home)."""
    s = db.session()
    up = accounts.usage_point(up_id)
    accounts.owner_only(s.get(db.Connection, up.connection_id))
    plan = s.scalar(
        select(db.RatePlan).where(
            db.RatePlan.usage_point_id == up_id,
            db.RatePlan.id == request.form.get("plan", type=int),
            db.RatePlan.status != PricingState.REMOVED,
        )
    )
    if plan is None:
        abort(404, "no such rate plan on this usage point")
    s.execute(delete(db.PlanCost).where(db.PlanCost.rate_plan_id == plan.id))
    plan.status, plan.reason, plan.priced = PricingState.REMOVED, "", 0
    s.commit()
    flash(f"{plan.name} was removed from the comparison.")
    return back_to_comparison(up_id)


def back_to_comparison(up_id: int) -> Any:
    """The rate plan page as the form was sent from: its dates and ZIP code kept."""
    kept: dict[str, Any] = {k: request.form.get(k) or None for k in ("start", "end", "zip")}
    return redirect(url_for("pricing.compare_page", up_id=up_id, **kept))


@bp.get("/usage-points/<int:up_id>/pricing/status")
def pricing_status(up_id: int) -> Response:
    """How the pricing of a usage point's plans goes, as JSON, for the rate plan page
    (``static/plans.js`` polls it while a plan is priced)."""
    accounts.usage_point(up_id)
    body = [{"id": p.id, "status": p.status, "reason": p.reason, "priced": p.priced}
            for p in plans_of(up_id)]  # fmt: skip
    return Response(json.dumps(body), mimetype="application/json")


def rate_plans(zipcode: str) -> tuple[list[espi_ws.Utility], str]:
    """The rate plans offered at a ZIP code for the usage point page (and an error text)."""
    if not zipcode:
        return [], ""
    try:
        return wattshift_client().utilities(zipcode), ""
    except espi.ProviderError as err:
        return [], err.message


# --------------------------------------------------------------------------- pricing (job)


def energy(mr: db.MeterReading) -> bool:
    rt = mr.reading_type
    return rt is not None and rt.uom == int(espi.UnitSymbolKind.WH)


def price_usage_point(up_id: int) -> None:
    """Price every energy reading of a usage point on each of its plans (job): cost and TOU
    period from each plan's home's 15-minute prices; energy sent to the grid at the export
    price. A plan WattShift refuses fails alone; an outage is tried again (jobs)."""
    s = db.session()
    client = wattshift_client()
    found = s.scalars(select(db.MeterReading).where(db.MeterReading.usage_point_id == up_id))
    meters = [(mr.id, mr.reading_type) for mr in found if mr.reading_type and energy(mr)]
    for listed in plans_of(up_id):
        # one worker at a time writes a plan's estimates (two plans added a moment apart queue
        # two jobs): the row is locked until they are committed (SQLite has one writer anyway)
        plan = s.scalar(
            select(db.RatePlan)
            .where(db.RatePlan.id == listed.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if plan is None or plan.status in (PricingState.FAILED, PricingState.REMOVED):
            s.commit()
            continue  # removed meanwhile; or failed: chosen again, it is priced again
        try:
            priced = sum(price_meter_reading(s, client, plan, mr, rt) for mr, rt in meters)
        except (espi.RateLimited, espi.Unavailable):
            raise  # tried again later (jobs)
        except espi.ProviderError as err:
            s.rollback()
            settle(s, plan.id, status=PricingState.FAILED, reason=str(err))
            continue
        settle(s, plan.id, status=PricingState.PRICED, reason="", priced=priced)


def settle(s: Any, plan_id: int, **done: Any) -> None:
    """A plan's pricing done, its estimates written in this transaction: kept, unless the plan
    was removed meanwhile (then they go, and it stays removed)."""
    chosen = update(db.RatePlan).where(
        db.RatePlan.id == plan_id, db.RatePlan.status != PricingState.REMOVED
    )
    if db.changed(s.execute(chosen.values(**done, updated=int(time.time())))):
        s.commit()
    else:
        s.rollback()


def note(up_id: int, text: str, final: bool, retry_at: int) -> None:
    """How a pricing attempt went, on the usage point's plans still being priced (jobs)."""
    s = db.session()
    for plan in plans_of(up_id):
        if plan.status == PricingState.PRICING:
            plan.reason = text
            if final:
                plan.status = PricingState.FAILED
    s.commit()


queueing.register("price", price_usage_point, note=note)


def price_meter_reading(
    s: Any, client: espi_ws.WattShift, plan: db.RatePlan, mr_id: int, rt: db.ReadingType
) -> int:
    """A meter reading's estimates on a plan, written anew: how many readings were priced."""
    r = db.Reading
    span = s.execute(
        select(func.min(r.start), func.max(r.start + r.duration)).where(r.meter_reading_id == mr_id)
    ).one()
    s.execute(
        delete(db.PlanCost).where(
            db.PlanCost.rate_plan_id == plan.id, db.PlanCost.meter_reading_id == mr_id
        )
    )
    if span[0] is None:
        return 0
    signal = client.price_signal_between(plan.home_id, int(span[0]), int(span[1]))
    export = rt.flow_direction == int(espi.FlowDirectionKind.REVERSE)
    priced, after = 0, (int(span[0]) - 1, 0)
    while True:  # a page of readings at a time: memory stays flat however long the history
        page = s.execute(
            select(r.start, r.seq, r.duration, r.value)
            .where(r.meter_reading_id == mr_id, tuple_(r.start, r.seq) > after)
            .order_by(r.start, r.seq)
            .limit(BATCH)
        ).all()
        if not page:
            break
        estimates = []
        for start, seq, duration, value in page:
            if value is None:  # no value given: nothing to price
                continue
            kwh = Decimal(value).scaleb(rt.power_of_ten - 3)
            found = espi_ws.cost_of(signal, start, duration, kwh, export=export)
            if found is not None:
                key = {"rate_plan_id": plan.id, "meter_reading_id": mr_id, "start": start}
                estimates.append({**key, "seq": seq, "cost": found[0], "tou": found[1]})
        if estimates:
            s.execute(insert(db.PlanCost), estimates)
        priced += len(estimates)
        after = (page[-1][0], page[-1][1])
    return priced


# --------------------------------------------------------------------------- comparison


@dataclass
class Column:
    """A column of the comparison: the utility's costs, or one plan's estimates."""

    key: str
    name: str
    plan: db.RatePlan | None = None

    @property
    def estimate(self) -> bool:
        return self.plan is not None


@dataclass
class Line:
    """A row of the comparison (a month, or the total): energy and each column's cost."""

    start: int
    imported: Decimal = Decimal(0)  # kWh
    exported: Decimal = Decimal(0)
    costs: dict[str, int | None] = field(default_factory=dict)

    def add(self, key: str, cost: int | None) -> None:
        if cost is not None:
            self.costs[key] = (self.costs.get(key) or 0) + cost


@dataclass
class Comparison:
    start: int | None
    end: int | None
    currency: str
    columns: list[Column]
    months: list[Line]
    total: Line
    #: per plan's column key: (TOU period name, kWh, cost) from the cheapest period up
    tou: dict[str, list[tuple[str, Decimal, int]]]


def tou_names(periods: list[int]) -> dict[int, str]:
    """Names for a plan's TOU periods (1: its cheapest price)."""
    words = {1: ["all hours"], 2: ["off-peak", "peak"], 3: ["off-peak", "mid-peak", "peak"]}
    names = words.get(len(periods)) or [f"period {n}" for n in periods]
    return dict(zip(sorted(periods), names, strict=True))


def compare(s: Any, up: db.UsagePoint, start: int | None, end: int | None) -> Comparison:
    """The utility's costs and each plan's estimates of a usage point's energy in [start, end):
    by local month, in total, and each plan's by time-of-use period."""
    zone = rows.zone(up)
    plans = plans_of(up.id)
    columns = [Column(UTILITY, "Your utility's cost")]
    columns += [Column(f"plan-{p.id}", p.name, p) for p in plans]
    months: dict[int, Line] = {}
    total = Line(start or 0)
    tou: dict[str, dict[int, list[Any]]] = {c.key: {} for c in columns if c.plan is not None}
    currency = ""
    meters = [mr for mr in up.meter_readings if energy(mr)]
    for mr in meters:
        rt = mr.reading_type
        if rt is None:
            continue
        currency = currency or (espi.Currency(rt.currency).label if rt.currency else "")
        sent = rt.flow_direction == int(espi.FlowDirectionKind.REVERSE)
        for column in columns:
            plan = column.plan.id if column.plan is not None else None
            for t, _, value, cost, _ in sums(s, mr.id, "month", zone, start, end, plan):
                line = months.setdefault(t, Line(t))
                line.add(column.key, cost)
                total.add(column.key, cost)
                if plan is None and value is not None:
                    kwh = Decimal(value).scaleb(rt.power_of_ten - 3)
                    line.exported += kwh if sent else 0
                    line.imported += 0 if sent else kwh
            if plan is not None:
                for period_, kwh, cost in tou_totals(s, plan, mr.id, rt.power_of_ten, start, end):
                    found = tou[column.key].setdefault(period_, [Decimal(0), 0])
                    found[0] += kwh if not sent else 0
                    found[1] += cost
    total.imported = sum((m.imported for m in months.values()), Decimal(0))
    total.exported = sum((m.exported for m in months.values()), Decimal(0))
    by_tou = {}
    for key, periods in tou.items():
        names = tou_names(list(periods))
        by_tou[key] = [(names[n], kwh, cost) for n, (kwh, cost) in sorted(periods.items())]
    if plans and not currency:
        currency = "USD"  # WattShift's prices are in dollars
    return Comparison(start, end, currency or "USD", columns,
                      [months[t] for t in sorted(months)], total, by_tou)  # fmt: skip


def estimates(
    s: Any, plan: int, mr_id: int, start: int | None, end: int | None
) -> dict[tuple[int, int], int]:
    """A plan's estimates of a meter reading's readings in [start, end), by (start, seq)."""
    pc = db.PlanCost
    query = select(pc.start, pc.seq, pc.cost).where(
        pc.rate_plan_id == plan, pc.meter_reading_id == mr_id
    )
    query = query.where(pc.start >= start) if start is not None else query
    query = query.where(pc.start < end) if end is not None else query
    return {(t, seq): cost for t, seq, cost in s.execute(query)}


def tou_totals(
    s: Any, plan: int, mr_id: int, power: int, start: int | None, end: int | None
) -> list[tuple[int, Decimal, int]]:
    """A plan's estimates of a meter reading per TOU period: (period, kWh, cost)."""
    pc, r = db.PlanCost, db.Reading
    where = [pc.rate_plan_id == plan, pc.meter_reading_id == mr_id]
    where += [pc.start >= start] if start is not None else []
    where += [pc.start < end] if end is not None else []
    query = (
        select(pc.tou, func.sum(r.value), func.sum(pc.cost))
        .join(r, estimate_of(plan))
        .where(*where)
        .group_by(pc.tou)
    )  # fmt: skip
    return [
        (tou or 0, Decimal(value or 0).scaleb(power - 3), int(cost or 0))
        for tou, value, cost in s.execute(query)
    ]


def default_period(up: db.UsagePoint) -> tuple[str, str]:
    """The comparison's dates when none are asked: the twelve months up to the last reading
    (local dates)."""
    zone = rows.zone(up)
    last = db.last_reading_start(db.UsagePoint.id == up.id)
    end = datetime.fromtimestamp(last or time.time(), zone).date()
    first = (end.replace(day=1) - timedelta(days=335)).replace(day=1)
    return first.isoformat(), end.isoformat()


@bp.get("/usage-points/<int:up_id>/compare")
def compare_page(up_id: int) -> Any:
    """The utility's cost and the chosen plans' estimates side by side, for chosen dates; the
    plans offered at a ZIP code, to add one."""
    s = db.session()
    up = accounts.usage_point(up_id)
    dates = request.args.get("start"), request.args.get("end")
    if not all(dates):
        first, last = default_period(up)
        zipcode = request.args.get("zip") or None
        return redirect(
            url_for("pricing.compare_page", up_id=up_id, start=first, end=last, zip=zipcode)
        )
    start, end = period(rows.zone(up))
    conn = s.get(db.Connection, up.connection_id)
    zipcode = request.args.get("zip", "")
    offered, error = rate_plans(zipcode) if configured("wattshift") else ([], "")
    return render_template(
        "compare.html",
        up=up,
        name=usage_point_name(up),
        comparison=compare(s, up, start, end),
        dates=dates,
        zipcode=zipcode,
        offered=offered,
        offered_error=error,
        pricing_available=configured("wattshift"),
        mine=conn is not None and conn.account_id == accounts.account().id,
    )
