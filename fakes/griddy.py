"""A local Griddy API (https://app.gogriddy.com/api/v1), after ../shared/seeds/003 and
reference/providers.md: every call a POST with a JSON body; ``users/signin`` gives an access
token (sent as ``Authorization: Bearer``) and a refresh token (``users/token/refresh``,
``users/signout``); a member's data at member level: ``members/get_all`` (the user's members,
one per meter), ``analytics/history`` (hourly, daily, monthly price, use and cost),
``analytics/usage`` (a period and its children), ``analytics/savings``, ``billing/summary``
(a month's statement: groups of line items) and ``insights/getnow`` (prices now and forecast,
numbers where the seed's example has numbers). ``meter/get_meter`` "requires an admin access
token", as the seed says: a member's token is refused (403), the sandbox admin's is not.
Errors: 400 with ``{"InvalidFields": [...]}`` or ``{"MissingItemType": "meter"}``, 403 "We
couldn't authenticate you".

The seed documents a meter record's ``ID`` (the ``meterID`` the analytics calls take) as "the
member's user ID": the sandbox's meter has its member's user ID.

Settlement points (``insights/getnow``): "the load zone, or the region within a load zone":
ERCOT's load zones and trading hubs by name, and any other all-caps settlement point name as a
region within a zone; a lower-case or unknown ``LZ_``/``HB_`` name is refused.

Prices are invented ERCOT-like ones (¢/kWh): low at night, an afternoon peak, rare spikes.
"""

from __future__ import annotations

import itertools
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from .common import DAY, HOUR, blueprint_app, kwh, noise

ZONE = ZoneInfo("America/Chicago")
HOURLY_DAYS = 35
DAILY_DAYS = 120
MONTHS = 13
API = "/api/v1"
#: ERCOT's load zones and trading hubs (settlement points by name)
LOAD_ZONES = (
    "LZ_AEN",
    "LZ_CPS",
    "LZ_HOUSTON",
    "LZ_LCRA",
    "LZ_NORTH",
    "LZ_RAYBN",
    "LZ_SOUTH",
    "LZ_WEST",
)
HUBS = ("HB_BUSAVG", "HB_HOUSTON", "HB_HUBAVG", "HB_NORTH", "HB_PAN", "HB_SOUTH", "HB_WEST")
SETTLEMENT_POINT = re.compile(r"[A-Z][A-Z0-9_]{1,31}")
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
MEMBERSHIP = 9.99  # dollars a month (the seed's membership_rate)
#: a signin answer's status flags (the seed's User Status object)
STATUS_FLAGS = (
    "is_whitelisted",
    "member",
    "name",
    "address",
    "birthday",
    "agreement",
    "payment_enroll",
    "payment_card",
    "meter",
    "billing_has_funds",
    "billing_enroll",
    "recharge_settings",
)

bp = Blueprint("griddy", __name__, url_prefix=API)


@dataclass
class Member:
    email: str
    password: str
    user_id: str
    member_id: str
    meters: list[dict[str, Any]]
    admin: bool = False


@dataclass
class State:
    members: dict[str, Member]
    token_ttl: int
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # access -> user, expiry
    refresh: dict[str, str] = field(default_factory=dict)  # refresh token -> user

    def expire_tokens(self) -> None:
        """Tests: every access token given out has expired."""
        self.tokens = {t: (u, 0.0) for t, (u, _) in self.tokens.items()}

    def issue(self, user_id: str) -> str:
        token = secrets.token_urlsafe(24)
        self.tokens[token] = (user_id, time.time() + self.token_ttl)
        return token


def sandbox_member(email: str = "jane.doe@example.com", password: str = "Password123") -> Member:  # noqa: S107
    """The seed's example member (jane.doe@example.com / Password123), with one meter."""
    user_id = "97012348"
    meter = {
        "meterID": "1008901023817063",
        "memberID": "69a0c3d6-12b",
        "settlement_point": "LZ_HOUSTON",
        "status": {"status": "connected", "effective_date": "2018-04-30T22:14:47Z"},
        "service_address": {
            "name": "",
            "lineOne": "123 Main st",
            "lineTwo": "#915",
            "city": "Houston",
            "state": "TX",
            "postalCode": "77017",
            "country": "USA",
            "postalCode4": "4566",
            "time_zone_name": "America/Chicago",
            "county": "Harris",
        },
        "enrollment_date": "2018-04-01T00:00:00Z",
        "start_date": "2018-04-30T00:00:00Z",
        "end_date": "",
        "ID": user_id,
        "meta_data": {"griddy_rate_class": "residential"},
        "duns_number": "1039940674000",
        "griddy_rate_class": "residential",
        "esg_meter_token": "",
        "enrollMode": "switch",
        "requested_start_date": "2018-04-30",
        "rate_class": "residential",
        "tier_name": "residential",
        "membership_rate": f"{MEMBERSHIP}",
        "utility_rates": {"per_kwh": "0.03896800", "monthly": "5.47000000"},
        "polr_customer_class": "residential",
        "load_profile": "",
        "tier_pending": False,
    }
    return Member(email, password, user_id, "69a0c3d6-12b", [meter])


def sandbox_admin() -> Member:
    """An operator whose access token is an admin token (meter/get_meter)."""
    return Member("admin@example.com", "AdminPassword1", "1", "", [], admin=True)


def create_app(members: list[Member] | None = None, *, token_ttl: int = 3600) -> Flask:
    """``members``: who can sign in (default: the seed's jane.doe@example.com / Password123,
    and the sandbox admin)."""
    people = members or [sandbox_member(), sandbox_admin()]
    return blueprint_app(bp, State({p.user_id: p for p in people}, token_ttl))


def state(app: Flask | None = None) -> State:
    found: State = (app or current_app).extensions["griddy"]
    return found


class Refusal(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


@bp.app_errorhandler(Refusal)
def refused(err: Refusal) -> Response:
    resp = jsonify(err.body)
    resp.status_code = err.status
    return resp


@bp.app_errorhandler(404)
@bp.app_errorhandler(405)
def unknown(err: Any) -> Response:
    """The seed's 400 "We could not process that action" for anything else."""
    return refused(Refusal(400, {"message": "We could not process that action"}))


def forbidden() -> Refusal:
    return Refusal(403, {"message": "We couldn't authenticate you"})


def body(*required: str) -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Refusal(400, {"message": "We could not process that action"})
    missing = [k for k in required if data.get(k) in (None, "")]
    if missing:
        raise Refusal(400, {"InvalidFields": missing})
    return data


def caller() -> Member:
    """The member whose (unexpired) access token the call carries."""
    s = state()
    auth = request.headers.get("Authorization", "")
    user, expiry = s.tokens.get(auth.removeprefix("Bearer ").strip(), ("", 0.0))
    if not auth.startswith("Bearer ") or expiry <= time.time():
        raise forbidden()
    return s.members[user]


def meter_of(who: Member, meter_id: Any) -> dict[str, Any]:
    """One of the caller's meters by its record ID (not the ESI ID)."""
    for meter in who.meters:
        if meter["ID"] == str(meter_id):
            return meter
    raise Refusal(400, {"MissingItemType": "meter"})


def own_member(who: Member, member_id: Any) -> None:
    if str(member_id) != who.member_id:
        raise Refusal(400, {"MissingItemType": "member"})


def member_record(who: Member) -> dict[str, Any]:
    """A member as the seed's members endpoints show one."""
    address = who.meters[0]["service_address"] if who.meters else {}
    return {
        "userID": who.user_id,
        "memberID": who.member_id,
        "first_name": "Jane",
        "last_name": "Doe",
        "address": {
            "street_address": address.get("lineOne", ""),
            "city": address.get("city", ""),
            "state": "TX",
            "country": "usa",
            "postal_code": address.get("postalCode", ""),
        },
        "profile_pic_url": "",
        "current_balance_dollars": "",
        "est_top_off_date": "",
        "recharge_dollars": "49",
        "notify_price_alert": True,
        "notify_refill": False,
        "created_date": "2018-04-01T00:00:00Z",
        "fee": "0.33",
        "language": "en",
        "critical_care": False,
        "birthday": "1980-01-01T00:00:00Z",
        "esg_customer_token": "",
        "secondary_account_holder": None,
    }


# --------------------------------------------------------------------------- made-up data


def price_ckwh(point: str, t: int) -> float:
    """A wholesale price in ¢/kWh at instant ``t`` (hourly shape, rare spikes)."""
    hour = ((t // HOUR) - 6) % 24
    shape = 1.6 + 2.2 * math.exp(-(((hour - 17) / 2.2) ** 2))
    spike = 40.0 if noise(point, t // HOUR) > 0.995 else 0.0
    return round(shape + 1.2 * noise(point, t) + spike, 2)


def use_and_cost(meter: dict[str, Any], t: int, step: int) -> tuple[float, float]:
    """kWh and wholesale-plus-delivery dollars over [t, t + step)."""
    point, ident = meter["settlement_point"], meter["ID"]
    use = cost = 0.0
    for h in range(t, t + step, HOUR):
        u = kwh(ident, h, HOUR, offset=-6)
        use += u
        cost += u * (price_ckwh(point, h) + 3.9) / 100
    return use, cost


def entry(t: int, step: int, meter: dict[str, Any], zone: ZoneInfo = ZONE) -> dict[str, str]:
    """One history entry: use, the use-weighted price and cost over [t, t + step)."""
    use, cost = use_and_cost(meter, t, step)
    return {
        "time": datetime.fromtimestamp(t, zone).isoformat(),  # RFC 3339, in the asked zone
        "price_ckwh": f"{cost * 100 / use:.2f}" if use else "0",
        "usage_kwh": f"{use:.3f}",
        "cost_dollars": f"{cost:.2f}",
    }


def local_midnight(t: int) -> datetime:
    return datetime.fromtimestamp(t, ZONE).replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(d: datetime) -> datetime:
    return d.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(d: datetime) -> datetime:
    return month_start(month_start(d) + timedelta(days=32))


def last_months(n: int) -> list[tuple[datetime, datetime]]:
    """The ``n`` whole months before the current one (Central time), oldest first."""
    months = [month_start(local_midnight(int(time.time())))]
    for _ in range(n):
        months.insert(0, month_start(months[0] - timedelta(days=1)))
    return list(itertools.pairwise(months))


def history(meter: dict[str, Any], zone: ZoneInfo) -> dict[str, list[dict[str, str]]]:
    now = int(time.time()) // HOUR * HOUR
    today = local_midnight(now)
    hourly = [entry(t, HOUR, meter, zone) for t in range(now - HOURLY_DAYS * DAY, now, HOUR)]
    days = [today - timedelta(days=n) for n in range(DAILY_DAYS, 0, -1)]
    daily = [
        entry(
            int(d.timestamp()),
            int((d + timedelta(days=1)).timestamp() - d.timestamp()),
            meter,
            zone,
        )
        for d in days
    ]
    monthly = [
        entry(int(a.timestamp()), int(b.timestamp() - a.timestamp()), meter, zone)
        for a, b in last_months(MONTHS)
    ]
    return {"hourly": hourly, "daily": daily, "monthly": monthly}


def usage_node(
    meter: dict[str, Any], start: datetime, aggregation: str, depth: int
) -> dict[str, Any]:
    finer = {"yearly": "monthly", "monthly": "daily", "daily": "hourly"}
    if aggregation == "yearly":
        end = start.replace(year=start.year + 1)
    elif aggregation == "monthly":
        end = next_month(start)
    elif aggregation == "daily":
        end = (start + timedelta(days=1, hours=2)).replace(hour=0)
    else:
        end = start + timedelta(hours=1)
    a, b = int(start.timestamp()), int(end.timestamp())
    now = int(time.time()) // HOUR * HOUR
    missing = a >= now
    e = entry(a, max(HOUR, min(b, now) - a), meter) if not missing else {}
    children: list[dict[str, Any]] = []
    if depth == 0:
        child, t = finer[aggregation], start
        while t < end:
            node = usage_node(meter, t, child, 1)
            children.append(node)
            t = datetime.fromtimestamp(node["_end"], ZONE)
    node = {
        "aggregation": aggregation,
        "period": start.isoformat(),
        "usage_kwh": e.get("usage_kwh", ""),
        "price_ckwh": e.get("price_ckwh", ""),
        "cost_dollars": e.get("cost_dollars", ""),
        "high_spike": False,
        "low_spike": False,
        "pending": a < now < b,
        "missing": missing,
        "children": children,
        "avg_kwh": "",
        "avg_cost": "",
        "_end": b,
    }
    if children:
        used = [float(c["usage_kwh"]) for c in children if c["usage_kwh"]]
        costs = [float(c["cost_dollars"]) for c in children if c["cost_dollars"]]
        node["avg_kwh"] = f"{sum(used) / len(used):.1f}" if used else ""
        node["avg_cost"] = f"{sum(costs) / len(costs):.2f}" if costs else ""
    return node


def strip(node: dict[str, Any]) -> dict[str, Any]:
    node = {k: v for k, v in node.items() if k != "_end"}
    node["children"] = [strip(c) for c in node["children"]]
    return node


def month_figures(meter: dict[str, Any], start: datetime) -> dict[str, float]:
    """A month's use and dollars: wholesale energy, delivery, membership, taxes."""
    end = next_month(start)
    use, cost = use_and_cost(
        meter, int(start.timestamp()), int(end.timestamp() - start.timestamp())
    )
    rates = meter["utility_rates"]
    delivery = use * float(rates["per_kwh"]) + float(rates["monthly"])
    energy = cost - use * 0.039  # use_and_cost includes the delivery adder
    taxes = (energy + delivery + MEMBERSHIP) * 0.02
    return {"use": use, "energy": energy, "delivery": delivery, "taxes": taxes}


def line_item(ident: str, kind: str, title: str, amount: float) -> dict[str, Any]:
    return {
        "ID": ident,
        "type": kind,
        "description": "",
        "item_type": "",
        "subID": "",
        "title": title,
        "sub_description": "",
        "amount_dollars": f"{amount:.2f}",
        "date": "",
        "meta_data": {},
        "name": title,
    }


def statement(meter: dict[str, Any], start: datetime) -> dict[str, Any]:
    """A month's billing summary in the seed's shape: groups of line items."""
    f = month_figures(meter, start)
    groups = [
        (
            "8",
            "wholesale_energy_cost",
            "Wholesale Electricity",
            "1",
            [("Electricity Usage", f["energy"] * 0.87), ("Ancillary Services", f["energy"] * 0.13)],
        ),
        ("1", "tdsp_cost", "TDU Delivery Charges", "2", [("TDU Delivery Charges", f["delivery"])]),
        ("7", "membership_fee", "Griddy Membership", "4", [("Griddy Membership", MEMBERSHIP)]),
        ("9", "taxes_and_fees", "Taxes & Fees", "3", [("Sales tax", f["taxes"])]),
    ]
    total = f["energy"] + f["delivery"] + MEMBERSHIP + f["taxes"]
    return {
        "month": str(start.month),
        "year": str(start.year),
        "total_amount": f"{total:.2f}",
        "beginning_account_balance": "50.00",
        "ending_account_balance": f"{50 - total % 50:.2f}",
        "group_items": [
            {
                "ID": gid,
                "type": kind,
                "title": title,
                "description": "",
                "amount_dollars": f"{sum(a for _, a in items):.2f}",
                "line_items": [line_item(gid, kind, name, a) for name, a in items],
                "name": title,
                "display_rank": rank,
            }
            for gid, kind, title, rank, items in groups
        ],
        "allin_rate_ckwh": f"{total * 100 / f['use']:.2f}" if f["use"] else "",
        "rate_to_compare_ckwh": "11.40",
        "cost_to_compare": f"{f['use'] * 0.114:.2f}",
        "kwh_used": f"{f['use']:.0f}",
        "projected_annual_savings_dollars": "305.5",
        "free_membership_expiration": {"has_free_months": False, "date": None},
    }


def savings_row(
    meter: dict[str, Any], start: datetime | None, months: list[datetime]
) -> dict[str, Any]:
    """One row of ``analytics/savings``: a month's (or, without ``start``, all months') costs
    against the EIA Texas average."""
    figures = [month_figures(meter, m) for m in ([start] if start else months)]
    use = sum(f["use"] for f in figures)
    costs = sum(f["energy"] + f["delivery"] + MEMBERSHIP for f in figures)
    taxes = sum(f["taxes"] for f in figures)
    eia = use * 0.114
    return {
        "period": start.strftime("%Y-%m-%d") if start else "total",
        "griddy_costs": f"{costs:.2f}",
        "griddy_taxes": f"{taxes:.2f}",
        "usage": f"{use:.0f}",
        "eia_rate": "11.4",
        "is_rolling_avg": False,
        "eia_costs": f"{eia:.2f}",
        "eia_taxes": f"{eia * 0.02:.2f}",
        "savings": f"{eia * 1.02 - costs - taxes:.2f}",
        "griddy_allin_rate": f"{(costs + taxes) * 100 / use:.1f}" if use else "0.0",
        "eia_allin_rate": "11.6",
        "griddy_all_in_costs": f"{costs + taxes:.2f}",
        "eia_tax_cpkwh": "0.2",
        "eia_allin_costs": f"{eia * 1.02:.2f}",
        "eia_costs_wo_taxes": f"{eia:.2f}",
    }


def insight(t: int, point: str, price_type: str) -> dict[str, Any]:
    """One getnow entry: the seed's example sends hour_num, min_num and value_score as numbers,
    the prices as strings."""
    local = datetime.fromtimestamp(t, ZONE)
    p = price_ckwh(point, t)
    return {
        "date": local.strftime("%Y-%m-%d"),
        "hour_num": local.hour,
        "min_num": local.minute,
        "settlement_point": point,
        "price_type": price_type,
        "price_ckwh": f"{p:.2f}",
        "value_score": min(100, int(p * 10)),
        "mean_price_ckwh": "2.40",
        "diff_mean_ckwh": f"{p - 2.4:.2f}",
        "high_ckwh": "45.00",
        "low_ckwh": "0.80",
        "std_dev_ckwh": "1.10",
        "price_display": f"{p:.1f}",
        "price_display_sign": "¢",
        "date_local_tz": local.tzname() or "CST",
    }


def settlement_point(value: Any) -> str:
    point = str(value)
    known = point.startswith(("LZ_", "HB_")) and point not in LOAD_ZONES + HUBS
    if not SETTLEMENT_POINT.fullmatch(point) or known:
        raise Refusal(400, {"InvalidFields": ["settlement_point"]})
    return point


def month_of(data: dict[str, Any]) -> datetime:
    """A statement's month: ``month`` by name ("April", the seed's example) or number ("8"),
    ``year``."""
    text, year = str(data["month"]).strip(), str(data["year"]).strip()
    names = [n.lower() for n in MONTH_NAMES]
    number = (
        names.index(text.lower()) + 1
        if text.lower() in names
        else int(text)
        if text.isdigit()
        else 0
    )
    if not 1 <= number <= 12 or not year.isdigit():
        raise Refusal(400, {"InvalidFields": ["month" if not 1 <= number <= 12 else "year"]})
    return datetime(int(year), number, 1, tzinfo=ZONE)


# --------------------------------------------------------------------------- routes


@bp.post("/users/signin")
def signin() -> Response:
    s = state()
    data = body("email", "password")
    if "@" not in str(data["email"]):
        raise Refusal(400, {"InvalidFields": ["email"]})
    who = next((p for p in s.members.values() if p.email == data["email"]), None)
    if who is None or not secrets.compare_digest(who.password, str(data["password"])):
        raise forbidden()
    refresh = secrets.token_urlsafe(24)
    s.refresh[refresh] = who.user_id
    status = dict.fromkeys(STATUS_FLAGS, True) | {"has_register_device": False}
    return jsonify(
        {
            "access_token": s.issue(who.user_id),
            "refresh_token": refresh,
            "userID": who.user_id,
            "status": status,
            "gg_status": "unavailable",
        }
    )


@bp.post("/users/token/refresh")
def token_refresh() -> Response:
    s = state()
    user = s.refresh.get(str(body("token")["token"]))
    if user is None:
        raise forbidden()
    return jsonify({"access_token": s.issue(user)})


@bp.post("/users/signout")
def signout() -> Response:
    found = state().refresh.pop(str(body("refresh_token")["refresh_token"]), None)
    return jsonify({"success": found is not None})


@bp.post("/members/get_all")
def members_get_all() -> Response:
    """The user's members (one per meter registered with Griddy)."""
    who = caller()
    if str(body("userID")["userID"]) != who.user_id:
        raise forbidden()
    return jsonify({"Members": [member_record(who)] if who.member_id else []})


@bp.post("/meter/get_meter")
def get_meter() -> Response:
    """Admin only (the seed: "This requires an admin access token")."""
    if not caller().admin:
        raise forbidden()
    data = body()
    everyone = [m for p in state().members.values() for m in p.meters]
    keys = ("meterID", "memberID", "ID")
    meters = [m for m in everyone if all(not data.get(k) or m[k] == str(data[k]) for k in keys)]
    return jsonify(
        {
            "meters": meters,
            "total": str(len(meters)),
            "has_next": False,
            "page": "1",
            "next": "2",
            "limit": "15",
        }
    )


@bp.post("/analytics/history")
def analytics_history() -> Response:
    who = caller()
    data = body("meterID")
    try:
        zone = ZoneInfo(str(data.get("iana_timezone") or "America/Chicago"))
    except (ValueError, KeyError):
        raise Refusal(400, {"InvalidFields": ["iana_timezone"]}) from None
    return jsonify(history(meter_of(who, data["meterID"]), zone))


@bp.post("/analytics/usage")
def analytics_usage() -> Response:
    who = caller()
    data = body("meterID", "period", "aggregation")
    meter = meter_of(who, data["meterID"])
    if data["aggregation"] not in ("yearly", "monthly", "daily"):
        raise Refusal(400, {"InvalidFields": ["aggregation"]})
    try:
        day = datetime.strptime(str(data["period"]), "%Y-%m-%d").replace(tzinfo=ZONE)
    except ValueError:
        raise Refusal(400, {"InvalidFields": ["period"]}) from None
    return jsonify(strip(usage_node(meter, day, data["aggregation"], 0)))


@bp.post("/analytics/savings")
def analytics_savings() -> Response:
    who = caller()
    own_member(who, body("memberID")["memberID"])
    months = [a for a, _ in last_months(MONTHS)]
    meter = who.meters[0]
    return jsonify(
        {
            "monthly": [savings_row(meter, m, months) for m in months],
            "totals": savings_row(meter, None, months),
            "hide_savings": False,
        }
    )


@bp.post("/billing/summary")
def billing_summary() -> Response:
    who = caller()
    data = body("memberID", "month", "year")
    own_member(who, data["memberID"])
    start = month_of(data)
    if start >= month_start(local_midnight(int(time.time()))):
        raise Refusal(400, {"InvalidFields": ["month"]})  # no statement for this month yet
    return jsonify(statement(who.meters[0], start))


@bp.post("/insights/getnow")
def getnow() -> Response:
    caller()
    point = settlement_point(body("settlement_point")["settlement_point"])
    now = int(time.time())
    five = now - now % 300
    hour = now - now % HOUR
    return jsonify(
        {
            "now": [insight(t, point, "lmp") for t in range(five - 11 * 300, five + 1, 300)],
            "forecast": [
                insight(t, point, "dam") for t in range(hour + HOUR, hour + 25 * HOUR, HOUR)
            ],
            "seconds_until_refresh": 300 - now % 300,
        }
    )
