"""A local WattzOn Link 4.0 (https://api.wattzon.com/link/4.0/), after ../shared/seeds/002: every
call authenticated by a client certificate signed by the CA it is served with (serve it with
``appkit.tls.tls_context``; without TLS every call is 403); echo, certificate info, ZIP and
utility look-up, profiles with filters and tags, write-only sensitive fields under an expiring
RSA transmission key (PKCS#1 OAEP, base64), extraction jobs walking through the seed's
statuses, bills (electricity, gas, water and ``billing`` records) with PDFs, monthly interval
files (``json``, ``csv``, and ``source``, the seed's default) and the SQS notification body,
POSTed to ``notify_url`` when a job ends. Errors are ``{"error": "..."}`` with the seed's
statuses.

Like WattzOn's Mock Agent, the utility username chooses what a job does: ``credential_error``,
``action_needed``, ``site_error``, ... end the job in that status, ``mystery`` ends it in a status
the seed does not list, ``solar`` adds energy sent to the grid, ``source_only`` extracts
interval months whose normalized files are not available (only ``format=source``); anything
else succeeds.

Everything this fake checks it defines itself, from the seed: the padding of sensitive values
(:data:`OAEP`), the bill records' field names, the job statuses. The normalized interval
files' field names are not published: :data:`INTERVAL_COLUMNS` are this fake's.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from flask import Blueprint, Flask, Response, current_app, jsonify, request

from .common import DAY, HOUR, blueprint_app, kwh, solar_kwh, therms

LINK = "/link/4.0"
HISTORY_MONTHS = 13
#: the seed: "encrypt the value using the PKCS1/OAEP algorithms" — PKCS#1 v2 OAEP with its
#: defaults (SHA-1 and MGF1-SHA-1), as PKCS1_OAEP implementations use them
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303
ZIPS = {
    "00007": ("Randomtown", "Random County", "RI", 41.82, -71.41),
    "94105": ("San Francisco", "San Francisco County", "CA", 37.79, -122.39),
    "95313": ("Crows Landing", "Stanislaus County", "CA", 37.39, -121.07),
}
#: id -> (name, types, lseid, homepage, ZIP codes served, has an agent)
UTILITIES: dict[int, tuple[str, str, str, str, tuple[str, ...], bool]] = {
    3149: (
        "Mock Utility Provider (electric+gas)",
        "electricity,gas",
        "",
        "https://wattzon.com",
        ("00007",),
        True,
    ),
    3150: (
        "Mock Utility (electric only)",
        "electricity",
        "",
        "https://wattzon.com",
        ("00007",),
        True,
    ),
    3151: ("Mock Water Utility", "water", "", "https://wattzon.com", ("00007",), True),
    3152: (
        "Mock Utility without an agent",
        "electricity",
        "",
        "https://wattzon.com",
        ("00007",),
        False,
    ),
    741: (
        "Pacific Gas and Electric Company",
        "electricity,gas",
        "14328",
        "https://www.pge.com",
        ("94105", "95313"),
        True,
    ),
}
#: the seed's in-progress statuses, in the order the agent goes through them
BILL_STEPS = (
    "queued",
    "init",
    "start",
    "login",
    "account_navigation",
    "bill_extract",
    "bill_processing",
    "logout",
    "worker_wait",
)
INTERVAL_STEPS = (
    "queued",
    "init",
    "start",
    "login",
    "account_navigation",
    "interval_extract",
    "interval_processing",
    "logout",
    "worker_wait",
)
#: usernames the agent answers with a failure, and the step it fails at
FAILURES = {
    "credential_error": "login",
    "action_needed": "login",
    "unexpected_presentation": "account_navigation",
    "site_error": "account_navigation",
    "timeout_site": "login",
    "agent_failure": "start",
    "timeout_agent": "worker_wait",
    "terminated": "init",
    "mystery": "worker_wait",  # ends in a status the seed does not list
}
SUCCESSES = ("success", "partial_success")
#: the normalized interval files' columns (this fake's; WattzOn publishes none)
INTERVAL_COLUMNS = ("start", "end", "usage", "units", "direction")
#: the profile fields the seed's "Retrieve Profile" lists (plus id and zipcode)
PROFILE_FIELDS = (
    "id",
    "label",
    "utility_provider",
    "utility_provider_id",
    "zipcode",
    "tags",
    "created",
    "modified",
)
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"

bp = Blueprint("wattzon", __name__, url_prefix=LINK)


@dataclass
class Key:
    private: rsa.RSAPrivateKey
    expires: int


@dataclass
class Job:
    id: str
    profile_id: int
    mode: str
    notify: bool
    created: float
    outcome: str  # the terminal status it reaches
    steps: tuple[str, ...]
    polls: int = 0
    done: bool = False


@dataclass
class State:
    clients: dict[str, bool]
    key_ttl: int
    step_seconds: float
    notify_url: str
    next_id: itertools.count[int] = field(default_factory=lambda: itertools.count(516))
    profiles: dict[int, dict[str, Any]] = field(default_factory=dict)
    keys: list[Key] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)
    #: profile -> extracted records: bills, and interval months per meter
    bills: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    months: dict[int, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def key(self) -> Key:
        now = int(time.time())
        if not self.keys or self.keys[-1].expires <= now + 60:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.keys.append(Key(private, now + self.key_ttl))
        return self.keys[-1]

    def expire_keys(self) -> None:
        """Tests: every transmission key given out has expired."""
        for key in self.keys:
            key.expires = 0

    def decrypt(self, value: str) -> str:
        try:
            blob = base64.b64decode(value, validate=True)
        except ValueError:
            raise Refusal(403, "Decryption failed") from None
        for key in reversed(self.keys):
            try:
                plain = key.private.decrypt(blob, OAEP).decode()
            except ValueError:
                continue
            if key.expires <= time.time():
                raise Refusal(403, "Key expired")
            return plain
        raise Refusal(403, "Decryption failed")


def create_app(
    clients: dict[str, bool] | None = None,
    *,
    key_ttl: int = 900,
    step_seconds: float = 0.0,
    notify_url: str = "",
) -> Flask:
    """``clients``: certificate common names -> enabled (default: ``third party``, enabled);
    ``step_seconds``: a job moves one status on per poll, and per that many seconds when set
    (then it also ends, and notifies, without being polled); ``notify_url``: where finished
    jobs' SQS message bodies are POSTed."""
    state = State(clients or {"third party": True}, key_ttl, step_seconds, notify_url)
    return blueprint_app(bp, state, strict_slashes=False)


def state(app: Flask | None = None) -> State:
    found: State = (app or current_app).extensions["wattzon"]
    return found


class Refusal(Exception):
    """The seed's error: ``{"error": "..."}`` with its status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@bp.app_errorhandler(Refusal)
def refused(err: Refusal) -> Response:
    resp = jsonify({"error": err.message})
    resp.status_code = err.status
    return resp


@bp.app_errorhandler(404)
def not_found(err: Any) -> Response:
    return refused(Refusal(404, "Not found"))


# --------------------------------------------------------------------------- who is asking


def peer() -> x509.Certificate | None:
    """The caller's client certificate (the TLS layer has checked it against the CA)."""
    pem = request.environ.get("SSL_CLIENT_CERT")
    return x509.load_pem_x509_certificate(pem.encode()) if pem else None


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


@bp.before_app_request
def authenticate() -> None:
    """403 for no certificate, or one of a client unknown or disabled here (a certificate
    from another CA fails the TLS handshake itself)."""
    cert = peer()
    if cert is None or not state().clients.get(common_name(cert)):
        raise Refusal(403, "Permission denied")


def body() -> dict[str, Any]:
    data = request.get_json(silent=True, force=True)
    if not isinstance(data, dict):
        raise Refusal(400, "Error loading the JSON")
    return data


def profile_of(pid: Any) -> dict[str, Any]:
    try:
        number = int(pid)
    except (TypeError, ValueError):
        raise Refusal(400, "Error loading the Profile ID") from None
    profiles = state().profiles
    if number not in profiles:
        raise Refusal(404, "Profile not found")
    return profiles[number]


def public(p: dict[str, Any]) -> dict[str, Any]:
    return {k: p[k] for k in PROFILE_FIELDS}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def answer(data: dict[str, Any], status: int) -> Response:
    resp = jsonify(data)
    resp.status_code = status
    return resp


# --------------------------------------------------------------------------- basics and look-ups


@bp.route("/echo", methods=["GET", "POST"])
def echo() -> Response:
    if request.method == "POST":
        return jsonify({"string": body().get("string")})
    return jsonify({"string": request.args.get("string")})


@bp.get("/certificates/info")
def certificate_info() -> Response:
    cert = peer()  # present: authenticate() let the call in
    assert cert is not None  # noqa: S101
    created, expires = cert.not_valid_before_utc, cert.not_valid_after_utc
    return jsonify(
        {
            "client_name": common_name(cert),
            "enabled": True,
            "expiration_date": expires.isoformat(),
            "created_date": created.isoformat(),
        }
    )


@bp.get("/zips/<zipcode>")
def zip_info(zipcode: str) -> Response:
    if not (zipcode.isdigit() and len(zipcode) == 5):
        raise Refusal(400, "Error loading the zipcode")
    if zipcode not in ZIPS:
        raise Refusal(404, "ZIP not found")
    city, county, st, lat, lon = ZIPS[zipcode]
    return jsonify(
        {
            "zipcode": zipcode,
            "city": city,
            "county": county,
            "state": st,
            "latitude": lat,
            "longitude": lon,
        }
    )


@bp.get("/utilities")
def find_utilities() -> Response:
    zipcode, name, kind = (request.args.get(k) for k in ("zipcode", "name", "type"))
    if not zipcode and not name:
        raise Refusal(400, "Name or Zipcode not found in URI")
    found = [
        uid
        for uid, (uname, types, _, _, zips, _) in UTILITIES.items()
        if (not zipcode or zipcode in zips)
        and (not name or name.lower() in uname.lower())
        and (not kind or kind in types.split(","))
    ]
    if not found:
        raise Refusal(404, "Utility Provider not found")
    return jsonify({"provider_ids": found})


@bp.get("/utilities/<provider_id>")
def utility(provider_id: str) -> Response:
    if not provider_id.isdigit():
        raise Refusal(400, "Error loading the Provider ID")
    if int(provider_id) not in UTILITIES:
        raise Refusal(404, "Utility Provider not found")
    name, types, lseid, home, _, _ = UTILITIES[int(provider_id)]
    return jsonify({"name": name, "type": types, "lseid": lseid or None, "homepage_url": home})


# --------------------------------------------------------------------------- profiles


def checked_provider(data: dict[str, Any]) -> int | None:
    if data.get("zipcode") not in (None, "") and data["zipcode"] not in ZIPS:
        raise Refusal(404, "ZIP not found")
    if "provider_id" not in data:
        return None
    try:
        uid = int(data["provider_id"])
    except (TypeError, ValueError):
        raise Refusal(400, "Error loading the JSON") from None
    if uid not in UTILITIES:
        raise Refusal(404, "Utility provider not found")
    return uid


def matches(p: dict[str, Any], args: Any, ids: set[int], tags: set[str]) -> bool:
    """Whether a profile passes every filter of a profile listing."""
    created = p["created"][:10]
    return (
        (not ids or p["id"] in ids)
        and (not args.get("provider") or str(p["utility_provider_id"]) == args["provider"])
        and (args.get("label") is None or p["label"] == args["label"])
        and (not args.get("start_date") or created >= args["start_date"][:10])
        and (not args.get("end_date") or created <= args["end_date"][:10])
        and (not tags or bool(tags & set(p["tags"])))
    )


@bp.get("/profiles")
def list_profiles() -> Response:
    args = request.args
    ids = {int(i) for i in args.get("id", "").split(",") if i.strip().isdigit()}
    tags = {t for t in args.get("tags", "").split(",") if t}
    found = [pid for pid, p in sorted(state().profiles.items()) if matches(p, args, ids, tags)]
    return jsonify({"profiles": found})


@bp.post("/profiles")
def create_profile() -> Response:
    s = state()
    data = body()
    uid = checked_provider(data)
    if uid is None:
        raise Refusal(400, "Error loading the JSON")
    with s.lock:
        pid = next(s.next_id)
    now = iso(time.time())
    s.profiles[pid] = {
        "id": pid,
        "label": str(data.get("label") or ""),
        "zipcode": data.get("zipcode") or "",
        "utility_provider": UTILITIES[uid][0],
        "utility_provider_id": uid,
        "tags": [],
        "created": now,
        "modified": now,
        "sensitive": {},
    }
    return jsonify(public(s.profiles[pid]))


@bp.route("/profiles/<pid>", methods=["GET", "PUT", "DELETE"])
def one_profile(pid: str) -> Response:
    p = profile_of(pid)
    if request.method == "DELETE":
        del state().profiles[p["id"]]
        return jsonify({"message": "Deleted"})
    if request.method == "PUT":
        data = body()
        uid = checked_provider(data)
        if uid is not None:
            p["utility_provider_id"], p["utility_provider"] = uid, UTILITIES[uid][0]
        for key in ("zipcode", "label"):
            if key in data:
                p[key] = str(data[key] or "")
        p["modified"] = iso(time.time())
    return jsonify(public(p))


@bp.get("/profiles/keys")
def transmission_key() -> Response:
    key = state().key()
    pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return jsonify({"public_key": pem.decode(), "expires": key.expires})


@bp.route("/profiles/<pid>/sensitive", methods=["GET", "POST", "PUT"])
def sensitive(pid: str) -> Response:
    p = profile_of(pid)
    if request.method == "GET":
        return jsonify({"fields": sorted(p["sensitive"])})
    data = body()
    name, value = data.get("field"), data.get("value")
    if not name or not isinstance(value, str):
        raise Refusal(400, "Error loading the JSON")
    if request.method == "POST" and name in p["sensitive"]:
        raise Refusal(409, "Field already exists")
    if request.method == "PUT" and name not in p["sensitive"]:
        raise Refusal(404, "Sensitive field not found")
    p["sensitive"][name] = state().decrypt(value)
    if request.method == "POST":
        return answer({"message": "Success"}, 201)
    return jsonify({"message": "success"})


@bp.delete("/profiles/<pid>/sensitive/<name>")
def delete_sensitive(pid: str, name: str) -> Response:
    p = profile_of(pid)
    if name not in p["sensitive"]:
        raise Refusal(404, "Field not found")
    del p["sensitive"][name]
    return jsonify({"message": "deleted"})


@bp.route("/profiles/<pid>/tags", methods=["GET", "POST", "DELETE"])
def tags(pid: str) -> Response:
    p = profile_of(pid)
    if request.method == "GET":
        return jsonify({"tags": p["tags"]})
    name = body().get("name")
    if not name:
        raise Refusal(400, "Error loading the JSON")
    if request.method == "DELETE":
        if name not in p["tags"]:
            raise Refusal(404, "Tag not found")
        p["tags"].remove(name)
        return jsonify({"message": "deleted"})
    known = any(name in q["tags"] for q in state().profiles.values())
    if name not in p["tags"]:
        p["tags"].append(name)
    return answer({"message": "Success" if known else "Created"}, 200 if known else 201)


# --------------------------------------------------------------------------- made-up extractions


def month_starts(n: int) -> list[datetime]:
    """The first of the last ``n`` months and of the current one (UTC)."""
    now = datetime.now(UTC)
    y, mo = now.year, now.month
    out: list[datetime] = []
    for _ in range(n + 1):
        out.insert(0, datetime(y, mo, 1, tzinfo=UTC))
        y, mo = (y, mo - 1) if mo > 1 else (y - 1, 12)
    return out


def usage_of(kind: str, pid: int, start: int, end: int) -> tuple[float, str, float]:
    """(usage, units, cost) of one service over a bill period."""
    if kind == "electricity":
        usage = round(sum(kwh(str(pid), t, HOUR) for t in range(start, end, HOUR)), 2)
        return usage, "kWh", round(usage * 0.2871, 2)
    gas = sum(therms(str(pid), t) for t in range(start, end, DAY))
    if kind == "gas":
        return round(gas, 2), "therms", round(gas * 1.93, 2)
    gallons = round(gas * 180)
    return gallons, "gallons", round(gallons * 0.0112, 2)


def extract_bills(profile: dict[str, Any], job_id: str) -> list[dict[str, Any]]:
    """A profile's bill records, with the seed's field names: one per service and month, and
    a ``billing`` record per month."""
    pid = profile["id"]
    types = UTILITIES[profile["utility_provider_id"]][1].split(",")
    account = f"{pid * 7919 % 10**8:08d}-{pid % 10}"
    common = {
        "account_number": account,
        "name": "J. Random Person",
        "currency": "USD",
        "service_address": f"{pid} J. Random Road, Randomtown, RI 00007",
        "cached": False,
        "cached_job_id": job_id,
    }
    out = []
    for a, b in itertools.pairwise(month_starts(HISTORY_MONTHS)):  # whole months
        start, end = int(a.timestamp()), int(b.timestamp())
        bill_date = iso(end + 2 * DAY)[:10]
        due = 0.0
        for kind in types:
            usage, units, cost = usage_of(kind, pid, start, end)
            due += cost
            bill_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{pid}/{kind}/{start}").hex[:24]
            record = {
                **common,
                "type": kind,
                "bill_id": bill_id,
                "bill_date": bill_date,
                "service_id": f"{pid:06d}{types.index(kind)}",
                "meter_number": f"{kind[0].upper()}{pid:07d}",
                "start_date": iso(start),
                "end_date": iso(end - 1),
                "cost": cost,
                "usage": usage,
                "units": units,
                "rate_plan": "E-1" if kind == "electricity" else "G-1",
                "pdf": f"{LINK}/data/bills/{pid}/{bill_id}/pdf",
            }
            if kind == "electricity" and profile.get("solar"):
                sent = sum(solar_kwh(t, HOUR, 4.0) for t in range(start, end, HOUR)) * 0.4
                record["exported_energy"] = round(sent, 2)
            out.append(record)
        out.append(
            {
                **common,
                "type": "billing",
                "bill_date": bill_date,
                "pdf": "",
                "bill_id": uuid.uuid5(uuid.NAMESPACE_URL, f"{pid}/billing/{start}").hex[:24],
                "previous_balance": round(due * 0.97, 2),
                "payment_received": round(due * 0.97, 2),
                "past_due_balance": 0.0,
                "current_charges": round(due, 2),
                "total_amount_due": round(due, 2),
                "due_date": iso(end + 23 * DAY)[:10],
                "payment_date": iso(end - 6 * DAY)[:10],
            }
        )
    return out


def interval_row(t: int, used: float, direction: str) -> dict[str, Any]:
    """A 15-minute row of a normalized interval file."""
    values = (t, t + 900, f"{used:.4f}", "kWh", direction)
    return dict(zip(INTERVAL_COLUMNS, values, strict=True))


def extract_months(profile: dict[str, Any], job_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    """15-minute electricity intervals of the last two months and this one, per month."""
    pid = profile["id"]
    meter = f"E{pid:07d}"  # the electricity bills' meter_number
    now = int(time.time()) // HOUR * HOUR
    out = {}
    for a, b in itertools.pairwise([*month_starts(2), datetime.fromtimestamp(now, UTC)]):
        start, end = int(a.timestamp()), min(int(b.timestamp()), now)
        if end <= start:
            continue
        rows = []
        for t in range(start, end, 900):
            rows.append(interval_row(t, kwh(meter, t, 900), "delivered"))
            sent = solar_kwh(t, 900, 4.0) - kwh(meter, t, 900) if profile.get("solar") else 0
            if sent > 0:
                rows.append(interval_row(t, sent, "received"))
        out[(meter, a.strftime("%Y-%m"))] = {
            "meter_id": meter,
            "month_id": a.strftime("%Y-%m"),
            "first_interval": start,
            "last_interval": end - 900,
            "complete": end == int(b.timestamp()),
            "extraction_time": int(time.time()),
            "source_file_size": len(json.dumps(rows)),
            "job_id_extracted": job_id,
            "rows": rows,
            "normalized": not profile.get("source_only"),
        }
    return out


# --------------------------------------------------------------------------- jobs


def status_of(job: Job) -> tuple[str, bool]:
    """Where a job is: one step per poll (and per ``step_seconds``), then its outcome."""
    step_seconds = state().step_seconds
    elapsed = (time.time() - job.created) / step_seconds if step_seconds else 0
    at = max(job.polls, int(elapsed))
    if at < len(job.steps):
        return job.steps[at], False
    if not job.done:
        finish(job)
    return job.outcome, True


def finish(job: Job) -> None:
    """A job's end: its records extracted (when it succeeded) and its SQS body sent."""
    s = state()
    with s.lock:
        if job.done:
            return
        job.done = True
    p = s.profiles.get(job.profile_id)
    new = 0
    if p is not None and job.outcome in SUCCESSES:
        if job.mode == "bill":
            before = {b["bill_id"] for b in s.bills.get(p["id"], [])}
            s.bills[p["id"]] = extract_bills(p, job.id)
            new = len({b["bill_id"] for b in s.bills[p["id"]]} - before)
        else:
            before_m = set(s.months.get(p["id"], {}))
            s.months[p["id"]] = extract_months(p, job.id)
            new = len(set(s.months[p["id"]]) - before_m)
    if job.notify:  # the seed's SQS message body
        message = {
            "app": "link",
            "profile_id": job.profile_id,
            "job_id": job.id,
            "tags": list(p["tags"]) if p else [],
            "created_at": str(datetime.now(UTC)),
            "final_state": job.outcome,
            "mode": job.mode,
            "new_records": new,
            "existing_records": len(s.bills.get(job.profile_id, ())) - new,
        }
        s.notifications.append(message)
        if s.notify_url:
            threading.Thread(target=post, args=(s.notify_url, message), daemon=True).start()


def later(app: Flask, job: Job) -> None:
    """Move a job to its end without a poll (``step_seconds``)."""
    with app.app_context():
        status_of(job)


@bp.post("/jobs")
def start_job() -> Response:
    s = state()
    data = body()
    p = profile_of(data.get("profile_id"))
    mode = data.get("mode", "bill")
    notify = data.get("send_notification", True)
    if mode not in ("bill", "interval") or not isinstance(notify, bool):
        raise Refusal(400, "Error loading the JSON")
    if not UTILITIES[p["utility_provider_id"]][5]:
        raise Refusal(404, "No agent for provider")
    username = p["sensitive"].get("username", "")
    steps: tuple[str, ...] = BILL_STEPS if mode == "bill" else INTERVAL_STEPS
    if "username" not in p["sensitive"] or "password" not in p["sensitive"]:
        outcome, steps = "incomplete_parameters", steps[:3]
    elif username in FAILURES:
        outcome = "AgentState.mystery_state" if username == "mystery" else username
        steps = steps[: steps.index(FAILURES[username]) + 1]
    else:
        outcome = "success"
    p["solar"] = "solar" in username
    p["source_only"] = username == "source_only"
    job = Job(str(uuid.uuid4()), p["id"], mode, notify, time.time(), outcome, steps)
    s.jobs[job.id] = job
    p["last_job"] = job.id
    if s.step_seconds:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        timer = threading.Timer(s.step_seconds * (len(steps) + 0.5), later, (app, job))
        timer.daemon = True
        timer.start()
    return jsonify({"job_id": job.id, "profile_id": p["id"]})


def job_answer(job: Job) -> Response:
    status, finished = status_of(job)
    job.polls += 1
    shown = status if status.startswith("AgentState.") else f"AgentState.{status}"
    detail = "" if not finished or job.outcome == "success" else f"agent reported {job.outcome}"
    return jsonify({"job_id": job.id, "job_status": shown, "finished": finished, "detail": detail})


@bp.get("/jobs/<job_id>")
def job_status(job_id: str) -> Response:
    jobs = state().jobs
    if job_id not in jobs:
        raise Refusal(404, "Job not found")
    return job_answer(jobs[job_id])


@bp.get("/jobs/profiles/<pid>")
def last_job(pid: str) -> Response:
    p = profile_of(pid)
    if not p.get("last_job"):
        raise Refusal(404, "Job not found")
    return job_answer(state().jobs[p["last_job"]])


# --------------------------------------------------------------------------- data


@bp.get("/data/bills/<pid>")
def bills(pid: str) -> Response:
    s = state()
    p = profile_of(pid)
    found = s.bills.get(p["id"], [])
    job_id = request.args.get("job_id")
    if job_id:
        if job_id not in s.jobs:
            raise Refusal(404, "Job not found")
        found = [b for b in found if b["cached_job_id"] == job_id]
    if not found:
        raise Refusal(404, "Bills not found")
    return jsonify(found)


@bp.get("/data/bills/<pid>/<bill_id>/pdf")
def bill_pdf(pid: str, bill_id: str) -> Response:
    p = profile_of(pid)
    bill = next((b for b in state().bills.get(p["id"], []) if b["bill_id"] == bill_id), None)
    if bill is None:
        raise Refusal(404, "Bill not found")
    if not bill["pdf"]:
        raise Refusal(404, "PDF not found")
    return Response(PDF, mimetype="application/pdf")


@bp.get("/data/intervals/<pid>")
def interval_periods(pid: str) -> Response:
    p = profile_of(pid)
    months = state().months.get(p["id"])
    if not months:
        raise Refusal(404, "No intervals found")
    hidden = ("rows", "normalized")
    return jsonify(
        {"intervals": [{k: v for k, v in mo.items() if k not in hidden} for mo in months.values()]}
    )


@bp.get("/data/intervals/<pid>/<meter>/monthly/<ym>")
def interval_month(pid: str, meter: str, ym: str) -> Response:
    p = profile_of(pid)
    fmt = request.args.get(
        "format", "source"
    )  # the seed: "format: source, csv, json (default: source)"
    if fmt not in ("source", "csv", "json"):
        raise Refusal(400, "Format not supported")
    month = state().months.get(p["id"], {}).get((meter, ym))
    if month is None:
        raise Refusal(404, "Interval not found")
    rows = month["rows"]
    if fmt != "source" and not month["normalized"]:
        raise Refusal(404, "Normalized data not available")
    if fmt == "json":
        return jsonify({"meter_id": meter, "month_id": ym, "units": "kWh", "intervals": rows})
    if fmt == "csv":
        lines = [",".join(INTERVAL_COLUMNS)] + [
            ",".join(str(r[c]) for c in INTERVAL_COLUMNS) for r in rows
        ]
        return Response("\n".join(lines) + "\n", mimetype="text/csv")
    return Response(source_file(rows), mimetype="text/csv")


def source_file(rows: list[dict[str, Any]]) -> str:
    """The utility's own download, as the agent found it: a Green Button "Download My Data"
    CSV (times in UTC here; a utility's file has its local time)."""
    lines = ["TYPE,DATE,START TIME,END TIME,USAGE,UNITS,NOTES"]
    for r in rows:
        if r["direction"] == "delivered":
            a, b = iso(r["start"]), iso(r["end"])
            lines.append(f"Electric usage,{a[:10]},{a[11:16]},{b[11:16]},{r['usage']},kWh,")
    return "\n".join(lines) + "\n"


def post(url: str, message: dict[str, Any], attempts: int = 3) -> None:
    """Deliver an SQS message body to the app (which stands in for the queue's consumer)."""
    for n in range(attempts):
        try:
            requests.post(url, json=message, timeout=10)
            return
        except requests.RequestException:
            time.sleep(0.5 * 2**n)
