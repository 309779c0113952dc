"""A local WattShift API (https://api.wattshift.com/v1), after ../shared/seeds/001 and
reference/providers.md: the API key header or a session token, utilities and rate plans by ZIP
(``ratePlans``, or the seed's ``wsRatePlans`` with ``legacy=True``), homes, solar systems, the
15-minute price signal (``data`` blocks and the per-slot arrays), simulated bills, the
documented error envelope and RATE_LIMITED with ``retry_after_seconds``.

Rate plans are time-of-use tariffs shaped like PG&E's (prices invented for the sandbox).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from .common import Limiter, blueprint_app

SLOT = 900
ZONE = "America/Los_Angeles"
#: the seed's headers: "x-ws-api-key: {apiKey}" or "Authorization: Bearer {sessionToken}"
KEY_HEADER = "x-ws-api-key"
#: rate plan id -> (name, [(from hour, to hour, $/kWh)], base $/kWh, export $/kWh)
PLANS = {
    "662955dff338bcedec0dbfe7": (
        "TOU-D",
        [(17, 20, "0.49"), (15, 17, "0.41"), (20, 21, "0.41")],
        "0.33",
        "0.05",
    ),
    "66d811ce52c6fe40859130e8": ("TOU-C", [(16, 21, "0.52")], "0.38", "0.06"),
    "66d811ce52c6fe40859130e9": (
        "E-ELEC",
        [(16, 21, "0.55"), (15, 16, "0.45"), (21, 24, "0.45")],
        "0.29",
        "0.05",
    ),
}
UTILITIES = [{"utilityId": "14328", "utilityName": "Pacific Gas & Electric", "plans": list(PLANS)}]
ZIP_PREFIXES = ("93", "94", "95")  # northern and central California: PG&E territory
AC_TYPES = ("central", "window", "split", "other")  # the seed's acType values

bp = Blueprint("wattshift", __name__)


@dataclass
class State:
    api_key: str
    legacy: bool = False
    limiter: Limiter = field(default_factory=lambda: Limiter(0))
    sessions: set[str] = field(default_factory=set)
    homes: dict[str, dict[str, Any]] = field(default_factory=dict)


def create_app(
    api_key: str = "ws-sandbox-key", *, legacy: bool = False, per_second: float = 0
) -> Flask:
    return blueprint_app(bp, State(api_key, legacy, Limiter(per_second)))


def state(app: Flask | None = None) -> State:
    found: State = (app or current_app).extensions["wattshift"]
    return found


class Refusal(Exception):
    """The documented envelope: ``{request_id, error_code, message, ...}``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


@bp.app_errorhandler(Refusal)
def refused(err: Refusal) -> Response:
    body = {
        "request_id": str(uuid.uuid4()),
        "error_code": err.code,
        "message": err.message,
        **err.extra,
    }
    resp = jsonify(body)
    resp.status_code = err.status
    if "retry_after_seconds" in err.extra:
        resp.headers["Retry-After"] = str(err.extra["retry_after_seconds"])
    return resp


def invalid(*errors: tuple[str, str]) -> Refusal:
    return Refusal(
        400,
        "VALIDATION_FAILED",
        "The request is not valid.",
        recovery_action="Correct the fields named in field_errors and send the request again.",
        field_errors=[{"field": f, "message": msg} for f, msg in errors],
    )


@bp.before_app_request
def authenticate() -> None:
    s = state()
    key = request.headers.get(KEY_HEADER)
    auth = request.headers.get("Authorization", "")
    if key is None and not auth.startswith("Bearer "):
        raise Refusal(401, "AUTH_MISSING_API_KEY", f"Send {KEY_HEADER} or a Bearer session token.")
    ok = (key is not None and secrets.compare_digest(key, s.api_key)) or (
        auth.removeprefix("Bearer ").strip() in s.sessions
    )
    if not ok:
        raise Refusal(401, "AUTH_INVALID_API_KEY", "The API key or session token is not valid.")
    wait = s.limiter.wait_needed(key or auth)
    if wait:
        seconds = max(1, int(wait + 0.999))
        raise Refusal(429, "RATE_LIMITED", "Too many requests.", retry_after_seconds=seconds)


def body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise invalid(("body", "must be a JSON object"))
    return data


def home_of(home_id: str) -> dict[str, Any]:
    home = state().homes.get(home_id)
    if home is None:
        raise Refusal(404, "NOT_FOUND", f"No home {home_id}.")
    return home


def price_at(plan_id: str, t: datetime) -> tuple[str, str]:
    """(import, export) $/kWh of a plan at a local time."""
    _, periods, base, export = PLANS[plan_id]
    for first, last, value in periods:
        if first <= t.hour < last:
            return value, export
    return base, export


def iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(name: str, text: Any) -> datetime:
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise invalid((name, "must be an ISO 8601 date-time")) from None
    if value.tzinfo is None:
        raise invalid((name, "must give its UTC offset (or Z)"))
    return value


# --------------------------------------------------------------------------- routes


@bp.post("/v1/onboarding/session-token/generate")
def session_token() -> Response:
    if KEY_HEADER not in request.headers:
        raise Refusal(403, "FORBIDDEN", "Session tokens are made with the API key.")
    token = secrets.token_urlsafe(24)
    state().sessions.add(token)
    return jsonify({"sessionToken": token})


@bp.post("/v1/utility/get")
def utility_get() -> Response:
    zipcode = str(body().get("zipcode") or "")
    if not (len(zipcode) == 5 and zipcode.isdigit()):
        raise invalid(("zipcode", "must be a 5-digit US ZIP code"))
    if not zipcode.startswith(ZIP_PREFIXES):
        return jsonify([])
    legacy = state().legacy
    out = []
    for u in UTILITIES:
        if legacy:  # the seed's spelling: wsRatePlans of {id, ratePlanName}
            plans: list[dict[str, Any]] = [
                {"id": p, "ratePlanName": PLANS[p][0]} for p in u["plans"]
            ]
        else:
            plans = [
                {
                    "id": p,
                    "rateID": f"pge-{PLANS[p][0].lower()}",
                    "ratePlanName": PLANS[p][0],
                    "supportedType": "residential",
                }
                for p in u["plans"]
            ]
        name = "wsRatePlans" if legacy else "ratePlans"
        out.append({"utilityId": u["utilityId"], "utilityName": u["utilityName"], name: plans})
    return jsonify(out)


@bp.post("/v1/homes/create")
def homes_create() -> Response:
    data = body()
    problems = [
        (f, "is required")
        for f in ("name", "zipcode", "utilityId", "ratePlanId")
        if not data.get(f)
    ]
    if data.get("ratePlanId") and data["ratePlanId"] not in PLANS:
        problems.append(("ratePlanId", "is not a rate plan of this utility"))
    if data.get("acType") not in (None, *AC_TYPES):
        problems.append(("acType", f"must be {', '.join(AC_TYPES[:-1])} or {AC_TYPES[-1]}"))
    if problems:
        raise invalid(*problems)
    home_id = f"ws_home_{uuid.uuid4().hex[:16]}"
    home = {
        "id": home_id,
        "name": data["name"],
        "zipcode": data["zipcode"],
        "utilityId": data["utilityId"],
        "ratePlanId": data["ratePlanId"],
        "timezone": ZONE,
        "meterId": None,
        "solar": None,
    }
    state().homes[home_id] = home
    return jsonify(home)


@bp.post("/v1/homes/solar/create")
def solar_create() -> Response:
    data = body()
    home = home_of(str(data.get("homeId") or ""))
    size = data.get("solarSystemSizeKw")
    if not isinstance(size, int | float) or size <= 0:
        raise invalid(("solarSystemSizeKw", "must be a positive number"))
    home["solar"] = {
        "solarSystemSizeKw": size,
        "isNonNetMetered": bool(data.get("isNonNetMetered")),
    }
    return jsonify({"homeId": home["id"]})


def signal_span(data: dict[str, Any], zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The price signal's span: startTime and endTime (both or neither; at most 31 days), or
    the home's today."""
    if ("startTime" in data) != ("endTime" in data):
        raise invalid(("startTime", "give startTime and endTime together, or neither"))
    if "startTime" not in data:
        today = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        return today, today + timedelta(days=1)
    start, end = parse_time("startTime", data["startTime"]), parse_time("endTime", data["endTime"])
    if end <= start:
        raise invalid(("endTime", "must be after startTime"))
    if end - start > timedelta(days=31):
        raise invalid(("endTime", "at most 31 days per request"))
    return start, end


@bp.post("/v1/homes/<home_id>/price_signal")
def price_signal(home_id: str) -> Response:
    home = home_of(home_id)
    zone = ZoneInfo(home["timezone"])
    start, end = signal_span(request.get_json(silent=True) or {}, zone)
    first = int(start.timestamp()) // SLOT * SLOT
    starts = list(range(first, int(end.timestamp()), SLOT))
    prices = [price_at(home["ratePlanId"], datetime.fromtimestamp(t, zone)) for t in starts]
    blocks: list[dict[str, Any]] = []
    for t, (imp, exp) in zip(starts, prices, strict=True):
        if blocks and blocks[-1]["import"] == float(imp):
            blocks[-1]["endTime"] = iso(t + SLOT)
            continue
        blocks.append(
            {
                "startTime": iso(t),
                "endTime": iso(t + SLOT),
                "price": float(imp),
                "import": float(imp),
                "export": float(exp),
                "confidence": 1.0,
            }
        )
    arrays = ("import", "export") if state().legacy else ("imports", "exports")
    return jsonify(
        {
            "homeId": home_id,
            "startTime": iso(first),
            "endTime": iso(first + SLOT * len(starts)),
            "data": blocks,
            "prices": [float(i) for i, _ in prices],
            arrays[0]: [float(i) for i, _ in prices],
            arrays[1]: [float(e) for _, e in prices],
        }
    )


@bp.post("/v1/homes/<home_id>/bill/period")
def bill_period(home_id: str) -> Response:
    home = home_of(home_id)
    data = body()
    usage = data.get("usage")
    days_ok = isinstance(usage, list) and all(
        isinstance(day, list) and len(day) == 96 and all(isinstance(v, int | float) for v in day)
        for day in usage
    )
    if not days_ok or not isinstance(usage, list):
        raise invalid(("usage", "must be a list of days of 96 kWh values each"))
    try:
        first = datetime.strptime(str(data.get("startDate")), "%Y-%m-%d").replace(
            tzinfo=ZoneInfo(home["timezone"])
        )
        last = datetime.strptime(str(data.get("endDate")), "%Y-%m-%d").replace(tzinfo=first.tzinfo)
    except ValueError:
        raise invalid(("startDate", "startDate and endDate must be YYYY-MM-DD")) from None
    days = (last - first).days + 1
    if days != len(usage):
        raise invalid(("usage", f"needs one day per date from startDate to endDate ({days})"))
    total, kwh = 0.0, 0.0
    for n, day in enumerate(usage):
        midnight = first + timedelta(days=n)
        for slot, value in enumerate(day):
            imp, exp = price_at(home["ratePlanId"], midnight + timedelta(minutes=15 * slot))
            total += value * float(imp if value >= 0 else exp)
            kwh += value
    return jsonify(
        {
            "billTotal": round(total, 2),
            "startDate": data["startDate"],
            "endDate": data["endDate"],
            "gridServicesRev": 0,
            "CO2e": round(kwh * 0.2297, 3),
        }
    )
