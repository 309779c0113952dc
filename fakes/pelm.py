"""A local Pelm (https://api.pelm.com), after its published docs (../shared/seeds/000 and
reference/providers.md): client headers on every call, the Connect token and a Connect page
standing in for the JavaScript widget, the code exchange, accounts, intervals (two months by
default), bills at the seed's ``/users/{ACCOUNT_ID}/bills``, bill PDFs, the documented
``{error_code, message}`` errors, and ``data_unavailable`` (HTTP 500) for a while right after
Connect.

Two spellings of the answers: the current one (reference/providers.md: ``/accounts`` with
``available_meter_types`` and ``ghg_emissions_unit``, bills as ``[{account_id, bills: [...]}]``
with charges), and with ``seed_shapes`` the seed's own (``/accounts`` with ``emissions_unit``,
intervals with ``ghg_emission``, bills as ``{bill_id: {bill_start_date, bill_end_date}}`` with
RFC 1123 dates).

Sandbox users: any username with the password ``sandbox``. Every user has two accounts: one
with electricity (hourly) and gas (daily), one with electricity only (15-minute intervals).
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    jsonify,
    render_template_string,
    request,
)

from .common import DAY, HOUR, blueprint_app, kwh, therms

HISTORY_DAYS = 400
PASSWORD = "sandbox"  # noqa: S105 - the fake's published sandbox password
UTILITIES = {"pge": "Pacific Gas and Electric", "sce": "Southern California Edison"}
#: the older numeric ids of the same utilities (the seed's ``utility_id``)
UTILITY_IDS = {"1": "pge", "2": "sce"}
CONNECT_TOKEN_TTL = 1800  # seed: "Connect Tokens expire after 30 minutes"
CODE_TTL = 600  # seed: "The code is only valid for 10 minutes"
#: the headers every call carries (seed: "Pelm-Client-Id", "Pelm-Secret")
CLIENT_ID_HEADER, SECRET_HEADER = "Pelm-Client-Id", "Pelm-Secret"

bp = Blueprint("pelm", __name__)


@dataclass
class User:
    user_id: str
    utility: str
    connected: float
    accounts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class State:
    client_id: str
    secret: str
    data_delay: float = 0.0  # seconds of data_unavailable after Connect
    quota: int | None = None  # user-data calls allowed before quota_reached
    seed_shapes: bool = False  # answer in the seed's spellings (see the module's docstring)
    connect_tokens: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    codes: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    tokens: dict[str, User] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    calls: int = 0


def create_app(
    client_id: str = "pelm-sandbox-client",
    secret: str = "pelm-sandbox-secret",  # noqa: S107 - the sandbox's published pair
    *,
    data_delay: float = 0.0,
    quota: int | None = None,
    seed_shapes: bool = False,
) -> Flask:
    return blueprint_app(bp, State(client_id, secret, data_delay, quota, seed_shapes))


def state(app: Flask | None = None) -> State:
    found: State = (app or current_app).extensions["pelm"]
    return found


class Refusal(Exception):
    """Pelm's documented error: ``{"error_code", "message"}`` with its status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@bp.app_errorhandler(Refusal)
def refused(err: Refusal) -> Response:
    resp = jsonify({"error_code": err.code, "message": err.message})
    resp.status_code = err.status
    return resp


# --------------------------------------------------------------------------- who is asking


def client() -> State:
    """The calling client, checked by its two headers."""
    s = state()
    cid, sec = request.headers.get(CLIENT_ID_HEADER), request.headers.get(SECRET_HEADER)
    if not cid or not sec:
        raise Refusal(
            400, "parameter_missing", f"{CLIENT_ID_HEADER} and {SECRET_HEADER} headers are required"
        )
    if cid != s.client_id or not secrets.compare_digest(sec, s.secret):
        raise Refusal(
            401, "credentials_invalid", f"{CLIENT_ID_HEADER} or {SECRET_HEADER} is invalid"
        )
    return s


def user() -> User:
    """The user whose access token the call carries (counted against the quota)."""
    s = client()
    auth = request.headers.get("Authorization", "")
    found = (
        s.tokens.get(auth.removeprefix("Bearer ").strip()) if auth.startswith("Bearer ") else None
    )
    if found is None:
        raise Refusal(401, "token_invalid", "the access token is missing or invalid")
    s.calls += 1
    if s.quota is not None and s.calls > s.quota:
        raise Refusal(402, "quota_reached", "the request quota of this client is used up")
    return found


def ready(u: User) -> None:
    if time.time() < u.connected + state().data_delay:
        raise Refusal(500, "data_unavailable", "data is still syncing; try again in a few minutes")


def account_of(u: User, account_id: str | None) -> dict[str, Any]:
    if not account_id:
        raise Refusal(400, "parameter_missing", "account_id is required")
    for a in u.accounts:
        if a["id"] == account_id:
            return a
    raise Refusal(
        400, "parameter_invalid", f"account_id {account_id} is not one of this user's accounts"
    )


def epoch_arg(name: str) -> int | None:
    text = request.args.get(name)
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise Refusal(400, "parameter_invalid", f"{name} must be UNIX time in seconds")
    return int(text)


# --------------------------------------------------------------------------- made-up data


def accounts_for(user_id: str) -> list[dict[str, Any]]:
    def ident(n: int) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pelm:{user_id}:{n}"))

    number = int(hashlib.sha256(user_id.encode()).hexdigest()[:9], 16) % 10**10
    return [
        {
            "id": ident(1),
            "account_number": f"{number:010d}",
            "address": "1 WARRIORS WAY SAN FRANCISCO CA 94158",
            "available_meter_types": ["ELECTRIC", "GAS"],
            "usage_unit": "kwh",
            "gas_usage_unit": "therm",
            "ghg_emissions_unit": "kg_co2e",
            "step": HOUR,
        },
        {
            "id": ident(2),
            "account_number": f"{(number + 1) % 10**10:010d}",
            "address": "1 FERRY BUILDING SAN FRANCISCO CA 94105",
            "available_meter_types": ["ELECTRIC"],
            "usage_unit": "kwh",
            "ghg_emissions_unit": "kg_co2e",
            "step": 900,
        },
    ]


def public(account: dict[str, Any]) -> dict[str, Any]:
    """An account as ``/accounts`` shows it (the seed's example keys with ``seed_shapes``)."""
    if state().seed_shapes:
        keep = ("id", "account_number", "address", "usage_unit")
        return {**{k: account[k] for k in keep}, "emissions_unit": "kg_co2e_per_kwh"}
    return {k: v for k, v in account.items() if k != "step"}


def history_end() -> int:
    return int(time.time()) // DAY * DAY


def intervals(
    account: dict[str, Any], meter_type: str, start: int, end: int
) -> list[dict[str, Any]]:
    step = DAY if meter_type == "GAS" else account["step"]
    first = max(start, history_end() - HISTORY_DAYS * DAY)
    first = first + (-first) % step
    out = []
    for t in range(first, min(end, history_end()), step):
        if meter_type == "GAS":
            usage = round(therms(account["id"], t), 3)
            ghg = None  # emissions are only given for electricity
        else:
            usage = round(kwh(account["id"], t, step), 4)
            ghg = round(usage * 0.2297, 4)
        out.append({"start": t, "end": t + step, "usage": usage, "ghg_emissions": ghg})
    return out


def previous_month(t: datetime) -> datetime:
    """The same time on the 15th of the month before."""
    return (t - timedelta(days=28)).replace(day=15)


def bills(account: dict[str, Any]) -> list[dict[str, Any]]:
    """Monthly bills over the history: periods from the 15th, 08:00 UTC (Pacific midnight)."""
    end_day = datetime.fromtimestamp(history_end(), UTC)
    anchor = datetime(end_day.year, end_day.month, 15, 8, tzinfo=UTC)
    if anchor > end_day:
        anchor = previous_month(anchor)
    edges = [anchor]
    for _ in range(12):
        edges.insert(0, previous_month(edges[0]))
    out = []
    for start, stop in itertools.pairwise(edges):
        a, b = int(start.timestamp()), int(stop.timestamp())
        electric = sum(i["usage"] for i in intervals(account, "ELECTRIC", a, b))
        has_gas = "GAS" in account["available_meter_types"]
        gas = sum(i["usage"] for i in intervals(account, "GAS", a, b)) if has_gas else None
        charges = {
            "electric_charges": round(electric * 0.3412, 2),
            "gas_charges": round(gas * 2.05, 2) if gas is not None else None,
            "other_charges": 5.12,
        }
        total = round(sum(v for v in charges.values() if v is not None), 2)
        out.append(
            {
                "id": f"{account['account_number']}{a // DAY:05d}",
                "start_date": a,
                "end_date": b,
                "statement_date": b + DAY,
                "due_date": b + 22 * DAY,
                "payment_date": None,
                "total_amount_due": total,
                "total_charges": total,
                "charges": charges,
                "electric_usage_kwh": round(electric, 4),
                "gas_usage_therm": round(gas, 3) if gas is not None else None,
            }
        )
    return out


def http_date(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


# --------------------------------------------------------------------------- Connect

CONNECT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Pelm Connect (sandbox)</title>
<style>body{font:16px system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}
label{display:block;margin:.8rem 0 .2rem}input,select,button{font:inherit;padding:.4rem;width:100%}
button{margin-top:1rem;background:#0b5cad;color:#fff;border:0;border-radius:4px}
.exit{background:#eee;color:#222}.error{color:#a30000}</style></head>
<body><h1>Pelm Connect</h1>
<p>Sandbox: stands in for Pelm's Connect widget. Any username, password <code>sandbox</code>.</p>
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
<form method="post">
<input type="hidden" name="connect_token" value="{{ token }}">
<input type="hidden" name="redirect_uri" value="{{ redirect_uri }}">
<label><input type="checkbox" name="terms" value="yes" required style="width:auto"> I accept Pelm's terms of service</label>
<label for="utility">Utility</label>
<select id="utility" name="utility">{% for slug, name in utilities.items() %}
<option value="{{ slug }}" {% if slug == utility %}selected{% endif %}>{{ name }}</option>{% endfor %}</select>
<label for="username">Utility username</label><input id="username" name="username" autocomplete="username" required>
<label for="password">Utility password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" name="action" value="connect">Connect</button>
<button type="submit" name="action" value="exit" class="exit" formnovalidate>Exit</button>
</form></body></html>"""


@bp.post("/auth/connect-token")
def connect_token() -> Response:
    s = client()
    user_id = request.form.get("user_id")
    if not user_id:
        raise Refusal(400, "parameter_missing", "user_id is required")
    slug, old = request.form.get("utility_slug"), request.form.get("utility_id")
    if slug and old:
        raise Refusal(400, "parameter_invalid", "send utility_slug or utility_id, not both")
    if old:
        slug = UTILITY_IDS.get(old)
        if slug is None:
            raise Refusal(400, "parameter_invalid", f"unknown utility_id {old}")
    if slug and slug not in UTILITIES:
        raise Refusal(400, "parameter_invalid", f"unknown utility_slug {slug}")
    token = secrets.token_urlsafe(24)
    s.connect_tokens[token] = (user_id, slug or "", time.time() + CONNECT_TOKEN_TTL)
    return jsonify({"connect_token": token, "expires_in": CONNECT_TOKEN_TTL})


@bp.route("/connect", methods=["GET", "POST"])
def connect_page() -> Any:
    """The widget's stand-in: terms, utility, credentials; then back to ``redirect_uri`` with
    ``code`` (the widget's onSuccess) or ``error=exit`` (its onExit)."""
    s = state()
    values = request.values
    token, redirect_uri = values.get("connect_token", ""), values.get("redirect_uri", "")
    grant = s.connect_tokens.get(token)
    if grant is None or grant[2] < time.time() or not redirect_uri:
        abort(400, "This Connect link is invalid or has expired (30 minutes); start again.")
    user_id, utility, _ = grant
    page = {"token": token, "redirect_uri": redirect_uri, "utilities": UTILITIES}
    if request.method == "GET":
        return render_template_string(CONNECT_PAGE, utility=utility, error="", **page)
    sep = "&" if "?" in redirect_uri else "?"
    if values.get("action") == "exit":
        return Response(status=302, headers={"Location": f"{redirect_uri}{sep}error=exit"})
    utility = values.get("utility", "")
    if values.get("password") != PASSWORD or utility not in UTILITIES:
        error = "credentials_invalid: the utility did not accept this username and password."
        return render_template_string(CONNECT_PAGE, utility=utility, error=error, **page), 401
    del s.connect_tokens[token]
    code = secrets.token_urlsafe(24)
    s.codes[code] = (user_id, utility, time.time() + CODE_TTL)
    return Response(
        status=302, headers={"Location": f"{redirect_uri}{sep}{urlencode({'code': code})}"}
    )


@bp.post("/auth/token")
def token() -> Response:
    s = client()
    code = request.form.get("code")
    if not code:
        raise Refusal(400, "parameter_missing", "code is required")
    if request.form.get("grant_type", "code") != "code":
        raise Refusal(400, "parameter_invalid", "grant_type must be code")
    grant = s.codes.pop(code, None)
    if grant is None or grant[2] < time.time():
        raise Refusal(400, "parameter_invalid", "the code is invalid or has expired (10 minutes)")
    user_id, utility, _ = grant
    u = s.users.get(user_id)
    if u is None:
        u = s.users[user_id] = User(user_id, utility, time.time(), accounts_for(user_id))
    u.connected = time.time()
    access = str(uuid.uuid4())
    s.tokens[access] = u
    return jsonify(
        {
            "access_token": access,
            "access_token_expires_in": 3600,
            "refresh_token": secrets.token_hex(32),
            "refresh_token_expires_in": 1314000,
        }
    )


# --------------------------------------------------------------------------- data


@bp.get("/accounts")
def accounts() -> Response:
    return jsonify([public(a) for a in user().accounts])


@bp.get("/intervals")
def get_intervals() -> Response:
    u = user()
    account = account_of(u, request.args.get("account_id"))
    meter_type = request.args.get("type", "ELECTRIC").upper()
    if meter_type not in account["available_meter_types"]:
        raise Refusal(400, "parameter_invalid", f"this account has no {meter_type} meter")
    start, end = epoch_arg("start_date"), epoch_arg("end_date")
    if (start is None) != (end is None):
        raise Refusal(400, "parameter_invalid", "give both start_date and end_date, or neither")
    if start is None or end is None:
        end = history_end()
        start = end - 61 * DAY
    if start > end:
        raise Refusal(400, "parameter_invalid", "start_date is after end_date")
    ready(u)
    units = {k: account[k] for k in ("id", "account_number", "address", "usage_unit")}
    if meter_type == "GAS":
        units["usage_unit"] = account["gas_usage_unit"]
    units["ghg_emissions_unit"] = account["ghg_emissions_unit"]
    rows = intervals(account, meter_type, start, end)
    answer: dict[str, Any] = {"utility": UTILITIES.get(u.utility, u.utility), "account": units}
    if state().seed_shapes:  # the seed's prose names the field ghg_emission
        rows = [
            {
                **{k: v for k, v in r.items() if k != "ghg_emissions"},
                "ghg_emission": r["ghg_emissions"],
            }
            for r in rows
        ]
    else:
        answer["type"] = meter_type
    return jsonify({**answer, "intervals": rows})


@bp.get("/users/<account_id>/bills")
def get_bills(account_id: str) -> Response:
    """The seed's path. (Pelm's later docs list ``/bills?account_id=``; this fake serves the
    seed's only, so a client that asks elsewhere finds out.)"""
    u = user()
    account = account_of(u, account_id)
    ready(u)
    found = bills(account)
    if state().seed_shapes:
        return jsonify(
            {
                b["id"]: {
                    "bill_end_date": http_date(b["end_date"]),
                    "bill_start_date": http_date(b["start_date"]),
                }
                for b in found
            }
        )
    return jsonify([{"account_id": account["id"], "bills": found}])


@bp.get("/bills/<bill_id>/pdf")
def bill_pdf(bill_id: str) -> Response:
    u = user()
    for account in u.accounts:
        for b in bills(account):
            if b["id"] == bill_id:
                text = f"Bill {bill_id}: {b['total_amount_due']:.2f} USD"
                return Response(minimal_pdf(text), mimetype="application/pdf")
    raise Refusal(400, "parameter_invalid", f"no bill {bill_id} for this user")


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF showing ``text``."""
    stream = f"BT /F1 14 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
