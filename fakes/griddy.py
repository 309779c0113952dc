"""A local Griddy API (https://app.gogriddy.com/api/v1), after ../shared/seeds/003 and
reference/providers.md: every call a POST with a JSON body; ``users/signin`` gives an access
token (sent as ``Authorization: Bearer``) and a refresh token (``users/token/refresh``); the
member, their meters, ``analytics/history`` (hourly, daily, monthly price, use and cost),
``analytics/usage`` (a period and its children) and ``insights/getnow`` (every value a string).
Errors: 400 with ``{"InvalidFields": [...]}`` or ``{"MissingItemType": "meter"}``, 403 "We
couldn't authenticate you".

Prices are invented ERCOT-like ones (¢/kWh): low at night, an afternoon peak, rare spikes.
"""

from __future__ import annotations

import itertools
import math
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response, jsonify, request

from .common import DAY, HOUR, Faults, kwh, noise

ZONE = ZoneInfo("America/Chicago")
HOURLY_DAYS = 35
DAILY_DAYS = 120
MONTHS = 13


class Refusal(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


def forbidden() -> Refusal:
    return Refusal(403, {"message": "We couldn't authenticate you"})


@dataclass
class Member:
    email: str
    password: str
    user_id: str
    member_id: str
    meters: list[dict[str, Any]]


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
    meter = {
        "meterID": "1008901023817063",
        "memberID": "69a0c3d6-12b",
        "settlement_point": "LZ_HOUSTON",
        "status": {"status": "connected", "effective_date": "2018-04-30T22:14:47Z"},
        "service_address": {"name": "", "lineOne": "123 Main st", "lineTwo": "#915",
                            "city": "Houston", "state": "TX", "postalCode": "77017", "country": "USA",
                            "postalCode4": "4566", "time_zone_name": "America/Chicago", "county": "Harris"},
        "enrollment_date": "2018-04-01T00:00:00Z", "start_date": "2018-04-30T00:00:00Z", "end_date": "",
        "ID": "35001", "meta_data": {"griddy_rate_class": "residential"}, "duns_number": "1039940674000",
        "griddy_rate_class": "residential", "enrollMode": "switch", "rate_class": "residential",
        "tier_name": "residential", "membership_rate": "9.99",
        "utility_rates": {"per_kwh": "0.03896800", "monthly": "5.47000000"},
        "polr_customer_class": "residential", "load_profile": "", "tier_pending": False,
    }  # fmt: skip
    return Member(email, password, "97012348", "69a0c3d6-12b", [meter])


def price_ckwh(point: str, t: int) -> float:
    """A wholesale price in ¢/kWh at instant ``t`` (hourly shape, rare spikes)."""
    hour = ((t // HOUR) - 6) % 24
    shape = 1.6 + 2.2 * math.exp(-(((hour - 17) / 2.2) ** 2))
    spike = 40.0 if noise(point, t // HOUR) > 0.995 else 0.0
    return round(shape + 1.2 * noise(point, t) + spike, 2)


def entry(t: int, step: int, meter: dict[str, Any], zone: ZoneInfo = ZONE) -> dict[str, str]:
    """One history entry: use, the use-weighted price and cost over [t, t + step)."""
    point, ident = meter["settlement_point"], meter["ID"]
    use = cost = 0.0
    for h in range(t, t + step, HOUR):
        u = kwh(ident, h, HOUR, offset=-6)
        use += u
        cost += u * (price_ckwh(point, h) + 3.9) / 100  # wholesale + delivery, in dollars
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


def history(meter: dict[str, Any], zone: ZoneInfo) -> dict[str, list[dict[str, str]]]:
    now = int(time.time()) // HOUR * HOUR
    today = local_midnight(now)
    hourly = [entry(t, HOUR, meter, zone) for t in range(now - HOURLY_DAYS * DAY, now, HOUR)]
    days = [today - timedelta(days=n) for n in range(DAILY_DAYS, 0, -1)]
    daily = [entry(int(d.timestamp()), int((d + timedelta(days=1)).timestamp() - d.timestamp()), meter, zone)
             for d in days]  # fmt: skip
    months = [month_start(today)]
    for _ in range(MONTHS):
        months.insert(0, month_start(months[0] - timedelta(days=1)))
    monthly = [entry(int(a.timestamp()), int(b.timestamp() - a.timestamp()), meter, zone)
               for a, b in itertools.pairwise(months)]  # fmt: skip
    return {"hourly": hourly, "daily": daily, "monthly": monthly}


def usage_node(
    meter: dict[str, Any], start: datetime, aggregation: str, depth: int
) -> dict[str, Any]:
    finer = {"yearly": "monthly", "monthly": "daily", "daily": "hourly"}
    if aggregation == "yearly":
        end = start.replace(year=start.year + 1)
    elif aggregation == "monthly":
        end = month_start(start + timedelta(days=32))
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
        "aggregation": aggregation, "period": start.isoformat(),
        "usage_kwh": e.get("usage_kwh", ""), "price_ckwh": e.get("price_ckwh", ""),
        "cost_dollars": e.get("cost_dollars", ""), "high_spike": False, "low_spike": False,
        "pending": a < now < b, "missing": missing, "children": children,
        "avg_kwh": "", "avg_cost": "", "_end": b,
    }  # fmt: skip
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


def insight(t: int, point: str, price_type: str) -> dict[str, str]:
    local = datetime.fromtimestamp(t, ZONE)
    p = price_ckwh(point, t)
    return {"date": local.strftime("%Y-%m-%d"), "hour_num": str(local.hour), "min_num": str(local.minute),
            "settlement_point": point, "price_type": price_type, "price_ckwh": f"{p:.2f}",
            "value_score": str(min(100, int(p * 10))), "mean_price_ckwh": "2.40", "diff_mean_ckwh": f"{p - 2.4:.2f}",
            "high_ckwh": "45.00", "low_ckwh": "0.80", "std_dev_ckwh": "1.10", "price_display": f"{p:.1f}",
            "price_display_sign": "¢", "date_local_tz": local.tzname() or "CST"}  # fmt: skip


def create_app(members: list[Member] | None = None, *, token_ttl: int = 3600) -> Flask:
    """``members``: who can sign in (default: the seed's jane.doe@example.com / Password123)."""
    app = Flask(__name__)
    people = members or [sandbox_member()]
    state = State({p.user_id: p for p in people}, token_ttl)
    app.extensions["griddy"] = state
    Faults().install(app)

    @app.errorhandler(Refusal)
    def refused(err: Refusal) -> Response:
        resp = jsonify(err.body)
        resp.status_code = err.status
        return resp

    @app.errorhandler(404)
    @app.errorhandler(405)
    def unknown(err: Any) -> Response:
        resp = jsonify({"message": "We could not process that action"})
        resp.status_code = 400
        return resp

    def body(*required: str) -> dict[str, Any]:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise Refusal(400, {"message": "We could not process that action"})
        missing = [k for k in required if data.get(k) in (None, "")]
        if missing:
            raise Refusal(400, {"InvalidFields": missing})
        return data

    def member() -> Member:
        auth = request.headers.get("Authorization", "")
        user, expiry = state.tokens.get(auth.removeprefix("Bearer ").strip(), ("", 0.0))
        if not auth.startswith("Bearer ") or expiry <= time.time():
            raise forbidden()
        return state.members[user]

    def meter_of(who: Member, meter_id: str) -> dict[str, Any]:
        for meter in who.meters:
            if meter["ID"] == str(meter_id):
                return meter
        raise Refusal(400, {"MissingItemType": "meter"})

    api = "/api/v1"

    @app.post(f"{api}/users/signin")
    def signin() -> Response:
        data = body("email", "password")
        if "@" not in str(data["email"]):
            raise Refusal(400, {"InvalidFields": ["email"]})
        who = next((p for p in state.members.values() if p.email == data["email"]), None)
        if who is None or not secrets.compare_digest(who.password, str(data["password"])):
            raise forbidden()
        refresh = secrets.token_urlsafe(24)
        state.refresh[refresh] = who.user_id
        status = dict.fromkeys(("member", "name", "address", "billing_enroll", "agreement",
                                "payment_enroll", "payment_card", "meter", "is_whitelisted",
                                "billing_has_funds"), True)  # fmt: skip
        return jsonify({"access_token": state.issue(who.user_id), "refresh_token": refresh,
                        "userID": who.user_id, "status": status, "gg_status": "unavailable"})  # fmt: skip

    @app.post(f"{api}/users/token/refresh")
    def refresh() -> Response:
        user = state.refresh.get(str(body("token")["token"]))
        if user is None:
            raise forbidden()
        return jsonify({"access_token": state.issue(user)})

    @app.post(f"{api}/users/signout")
    def signout() -> Response:
        found = state.refresh.pop(str(body("refresh_token")["refresh_token"]), None)
        return jsonify({"success": found is not None})

    @app.post(f"{api}/members/get_me")
    def get_me() -> Response:
        who = member()
        data = body()
        if data.get("userID") and data.get("memberID"):
            raise Refusal(400, {"InvalidFields": ["userID", "memberID"]})
        if str(data.get("userID") or "") not in ("", who.user_id) or str(
            data.get("memberID") or ""
        ) not in ("", who.member_id):
            raise forbidden()
        address = who.meters[0]["service_address"] if who.meters else {}
        return jsonify({"Members": [{
            "userID": who.user_id, "memberID": who.member_id, "first_name": "Jane", "last_name": "Doe",
            "address": {"street_address": address.get("lineOne", ""), "city": address.get("city", ""),
                        "state": "TX", "country": "usa", "postal_code": address.get("postalCode", "")},
            "profile_pic_url": "", "current_balance_dollars": "", "est_top_off_date": "", "recharge_dollars": "49",
            "notify_price_alert": True, "notify_refill": False, "created_date": "2018-04-01T00:00:00Z",
            "fee": "0.33", "language": "en", "critical_care": False, "esg_customer_token": "",
            "secondary_account_holder": None}]})  # fmt: skip

    @app.post(f"{api}/meter/get_meter")
    def get_meter() -> Response:
        who = member()
        data = body()
        if str(data.get("memberID") or who.member_id) != who.member_id:
            raise forbidden()
        meters = [m for m in who.meters if not data.get("ID") or m["ID"] == str(data["ID"])]
        return jsonify({"meters": meters, "total": str(len(meters)), "has_next": False,
                        "page": "1", "next": "2", "limit": "15"})  # fmt: skip

    @app.post(f"{api}/analytics/history")
    def analytics_history() -> Response:
        who = member()
        data = body("meterID")
        try:
            zone = ZoneInfo(str(data.get("iana_timezone") or "America/Chicago"))
        except (ValueError, KeyError):
            raise Refusal(400, {"InvalidFields": ["iana_timezone"]}) from None
        return jsonify(history(meter_of(who, data["meterID"]), zone))

    @app.post(f"{api}/analytics/usage")
    def analytics_usage() -> Response:
        who = member()
        data = body("meterID", "period", "aggregation")
        meter = meter_of(who, data["meterID"])
        if data["aggregation"] not in ("yearly", "monthly", "daily"):
            raise Refusal(400, {"InvalidFields": ["aggregation"]})
        try:
            day = datetime.strptime(str(data["period"]), "%Y-%m-%d").replace(tzinfo=ZONE)
        except ValueError:
            raise Refusal(400, {"InvalidFields": ["period"]}) from None
        return jsonify(strip(usage_node(meter, day, data["aggregation"], 0)))

    @app.post(f"{api}/insights/getnow")
    def getnow() -> Response:
        member()
        point = str(body("settlement_point")["settlement_point"]).upper()
        if point not in ("LZ_HOUSTON", "LZ_NORTH", "LZ_SOUTH", "LZ_WEST"):
            raise Refusal(400, {"InvalidFields": ["settlement_point"]})
        now = int(time.time())
        five = now - now % 300
        hour = now - now % HOUR
        return jsonify({
            "now": [insight(t, point, "lmp") for t in range(five - 11 * 300, five + 1, 300)],
            "forecast": [insight(t, point, "dam") for t in range(hour + HOUR, hour + 25 * HOUR, HOUR)],
            "seconds_until_refresh": str(300 - now % 300),
        })  # fmt: skip

    return app


def state(app: Flask) -> State:
    found: State = app.extensions["griddy"]
    return found
