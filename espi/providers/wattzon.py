"""WattzOn Link 4.0 (https://api.wattzon.com/link/4.0/): utility bills and interval data that
WattzOn's agents extract from a customer's utility website.

Every call is authenticated by the client's TLS certificate (WattzOn signs the client's CSR):

    wz = WattzOn(cert=("client.crt", "client.key"))
    wz.connect_form({"zip": "00007"})                 # the ZIP, the utilities there, the login
    credentials = wz.connect({"zip": "00007", "utility": "3149",
                              "username": "...", "password": "..."})   # profile, jobs started
    feed = wz.fetch(credentials)                      # NotReady until the jobs end, then a Feed

or step by step: ``find_utilities``, ``create_profile``, ``set_credentials`` (RSA-OAEP under a
transmission key), ``start_job``, ``wait``, ``bills``, ``interval_periods``, ``interval_month``.

The provider contract (:mod:`espi.providers.base`): CREDENTIALS connect (ZIP -> utility ->
the utility website's username and password, which go to WattzOn encrypted and are kept
nowhere else), intervals and bills, notifications (WattzOn's SQS message body). Settings:
``client_cert``, ``client_key``, ``ca_bundle`` (the CA that signs WattzOn's server certificate;
the system's by default), ``base_url``. ``credentials.account`` is the profile id;
``credentials.extra["jobs"]`` the extraction jobs still to wait for (space-separated).
``disconnect`` deletes the profile, and its credentials with it.

Mapping: one UsagePoint per utility type and meter (a bill's ``meter_number`` or
``service_id``, an interval file's ``meter_id``; equal identifiers meet on one usage point).
Electricity, gas and water bills become UsageSummaries (cost, usage in Wh / therm / gallons or
cubic feet, rate plan as ``tariffProfile``); a ``billing`` record's balances, payment and due
date become line items of the electricity bill of its date (or a UsageSummary of their own).
Monthly interval files become MeterReadings with every digit kept; energy sent to the grid a
second, reverse-flow one.

Where the seed (../shared/seeds/002) is silent or ambiguous:

- Interval files: ``format`` is ``source`` (the seed's default: the utility's own file),
  ``csv`` or ``json`` (normalized). The normalized files' field names are not published: they
  are read in one place, :data:`INTERVAL_FIELDS`, which accepts the names the seed implies and
  their usual variants. A source file is read when it is JSON or CSV with those names, or a
  Green Button "Download My Data" CSV (TYPE, DATE, START TIME, END TIME, USAGE, UNITS), whose
  local times are taken in ``zone`` (UTC unless given: WattzOn does not say). :meth:`fetch`
  asks for ``json`` and falls back to ``source`` where WattzOn answers "Normalized data not
  available".
- Sensitive values: "PKCS1/OAEP" is read as PKCS#1 v2 OAEP with its defaults, SHA-1 and
  MGF1-SHA-1 (:meth:`TransmissionKey.encrypt`), as PKCS1_OAEP implementations use them.
- Create profile: the seed's output list says ``profile_id``, its example ``id``: both read.
- A finished job that failed fails the fetch for good (AuthError for ``credential_error`` and
  ``incomplete_parameters``, ProviderError otherwise): asking again cannot change how it ended.
- The connect form's utility choice is every utility serving the ZIP code (their names from
  ``GET utilities/{id}``); the profile's label is the optional ``label`` value.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import requests

from .. import builder, timeparams
from .. import model as m
from ..codes import FlowDirectionKind, ItemKind, MeasurementKind, ServiceKind
from ..codes import UnitSymbolKind as U
from ..errors import AuthError, NotReady, ProviderError, RateLimited, Unavailable
from .base import (
    Capabilities,
    ConnectKind,
    Credentials,
    DataKind,
    Field,
    FieldError,
    Provider,
    Setting,
    body_of,
    register,
)

PREFIX = "/link/4.0/"
#: terminal job statuses (the seed's list); success and partial_success carry data
TERMINAL = {
    "success": None,
    "partial_success": None,
    "credential_error": AuthError,
    "incomplete_parameters": AuthError,
    "action_needed": ProviderError,
    "unexpected_presentation": ProviderError,
    "timeout_site": Unavailable,
    "site_error": Unavailable,
    "terminated": ProviderError,
    "agent_failure": ProviderError,
    "timeout_agent": Unavailable,
}
#: in-progress statuses, in the order they usually come
IN_PROGRESS = (
    "queued",
    "init",
    "start",
    "login",
    "account_navigation",
    "bill_extract",
    "bill_processing",
    "interval_extract",
    "interval_processing",
    "logout",
    "worker_wait",
)
#: what each terminal failure means, for people
STATUS_TEXT = {
    "credential_error": "the utility refused the username or password",
    "incomplete_parameters": "the profile lacks the credentials the agent needs",
    "action_needed": "the utility website needs the customer's attention (terms, password reset)",
    "unexpected_presentation": "the utility website changed in a way the agent did not expect",
    "timeout_site": "the utility website timed out",
    "site_error": "the utility website reported an error",
    "terminated": "the job was stopped at WattzOn",
    "agent_failure": "WattzOn's agent failed",
    "timeout_agent": "WattzOn's agent timed out",
}
SERVICES = {
    "electricity": ServiceKind.ELECTRICITY,
    "electric": ServiceKind.ELECTRICITY,
    "gas": ServiceKind.GAS,
    "water": ServiceKind.WATER,
}
#: unit (lower case) -> (ESPI unit, power of ten from it, the service it implies)
UNITS: dict[str, tuple[U, int, ServiceKind]] = {
    "kwh": (U.WH, 3, ServiceKind.ELECTRICITY),
    "wh": (U.WH, 0, ServiceKind.ELECTRICITY),
    "mwh": (U.WH, 6, ServiceKind.ELECTRICITY),
    "therm": (U.THERM, 0, ServiceKind.GAS),
    "therms": (U.THERM, 0, ServiceKind.GAS),
    "ccf": (U.FT3, 2, ServiceKind.GAS),
    "gallons": (U.US_GAL, 0, ServiceKind.WATER),
    "gal": (U.US_GAL, 0, ServiceKind.WATER),
    "kgal": (U.US_GAL, 3, ServiceKind.WATER),
    "hcf": (U.FT3, 2, ServiceKind.WATER),
    "cf": (U.FT3, 0, ServiceKind.WATER),
}
#: the normalized interval files' fields: our name -> the names accepted, first found wins
INTERVAL_FIELDS = {
    "start": ("start", "start_time", "interval_start", "timestamp", "time"),
    "end": ("end", "end_time", "interval_end"),
    "duration": ("duration", "seconds", "interval_length"),
    "usage": ("usage", "value", "kwh", "consumption"),
    "units": ("units", "unit", "uom"),
    "direction": ("direction", "flow"),
}
REVERSE = {"received", "export", "exported", "generation", "reverse"}
ERRORS: dict[str, type[ProviderError]] = {
    # a sensitive value's own problems, not the client's: fetch a new key or fix the value
    "key_expired": ProviderError,
    "decryption_failed": ProviderError,
}

T = TypeVar("T")


def code_of(message: str) -> str:
    """WattzOn's error texts as codes: ``"Key expired"`` -> ``key_expired``."""
    return re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")


def state_of(status: Any) -> str:
    """A job status as the seed lists it (``"AgentState.success"`` -> ``success``)."""
    return str(status or "").rsplit(".", 1)[-1].strip().lower()


@dataclass(frozen=True, slots=True)
class TransmissionKey:
    public_key: str  # PEM
    expires: int  # epoch seconds

    def encrypt(self, value: str) -> str:
        """``value`` encrypted as the sensitive-field endpoints want it: RSA PKCS#1 OAEP with
        SHA-1 and MGF1-SHA-1 (PKCS1_OAEP's usual defaults; SHA-1 stays sound inside OAEP), then
        base64. Needs the ``cryptography`` package (``pip install 'espi[wattzon]'``)."""
        try:
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import padding, rsa
        except ImportError:
            raise ProviderError(
                "WattzOn's sensitive fields are RSA-encrypted: install the cryptography package "
                "(pip install 'espi[wattzon]')",
                provider="wattzon",
            ) from None
        key = serialization.load_pem_public_key(self.public_key.encode())
        if not isinstance(key, rsa.RSAPublicKey):
            raise ProviderError("the transmission key is not an RSA key", provider="wattzon")
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303
        return base64.b64encode(key.encrypt(value.encode(), oaep)).decode()


@dataclass(frozen=True, slots=True)
class JobStatus:
    job_id: str
    status: str  # as sent (``AgentState.success`` or ``success``)
    finished: bool
    detail: str = ""

    @property
    def state(self) -> str:
        return state_of(self.status)

    @property
    def ok(self) -> bool:
        """Finished with data (success, or success with some records missing)."""
        return self.finished and self.state in ("success", "partial_success")

    def error(self) -> ProviderError | None:
        """The error a finished, unsuccessful job means (None while running or when it
        succeeded). A status the seed does not list counts by ``finished`` alone."""
        if not self.finished or self.ok:
            return None
        kind = TERMINAL.get(self.state) or ProviderError
        text = STATUS_TEXT.get(self.state, f"the job ended {self.state or 'without a status'}")
        if self.detail:
            text += f" ({self.detail})"
        return kind(f"job {self.job_id}: {text}", provider="wattzon", code=self.state)


@dataclass(frozen=True, slots=True)
class Notification:
    """WattzOn's SQS message for a finished job."""

    profile_id: int
    job_id: str
    final_state: str
    mode: str = "bill"
    tags: tuple[str, ...] = ()
    created_at: str = ""
    new_records: int = 0
    existing_records: int = 0

    @property
    def ok(self) -> bool:
        return state_of(self.final_state) in ("success", "partial_success")


@register
class WattzOn(Provider):
    """WattzOn Link. ``cert``: the client certificate and key (``(crt, key)`` paths, or one
    combined file); ``verify``: the CA bundle that signs WattzOn's server certificate (the
    system's by default)."""

    slug = "wattzon"
    title = "WattzOn Link"
    default_base = "https://api.wattzon.com"
    codes = ERRORS
    capabilities = Capabilities(
        ConnectKind.CREDENTIALS,
        frozenset({DataKind.INTERVALS, DataKind.BILLS}),
        notifications=True,
    )
    settings = (
        Setting("client_cert", required=True, help="the certificate WattzOn signed (PEM file)"),
        Setting("client_key", required=True, secret=True, help="its private key (PEM file)"),
        Setting("ca_bundle", help="the CA bundle for WattzOn's server (default: the system's)"),
        Setting("base_url", default=default_base, help="WattzOn's API"),
    )

    @classmethod
    def init_args(cls, values: dict[str, str]) -> dict[str, Any]:
        return {
            "cert": (values["client_cert"], values["client_key"]),
            "verify": values["ca_bundle"] or None,
            "base_url": values["base_url"],
        }

    def __init__(self, cert: tuple[str, str] | str | None = None, **kwargs: Any) -> None:
        super().__init__(cert=cert, **kwargs)
        self._key: TransmissionKey | None = None

    def url(self, path: str) -> str:
        """WattzOn's paths under /link/4.0/, with the trailing slash its own client adds."""
        path = path if path.startswith(PREFIX) else PREFIX + path.lstrip("/")
        return f"{self.base_url}{path.rstrip('/')}/"

    def error(self, resp: requests.Response) -> ProviderError:
        """WattzOn's errors are ``{"error": "Profile not found"}``."""
        body = body_of(resp)
        if isinstance(body, dict) and body.get("error"):
            message = str(body["error"])
            return self.classify(resp, message, code_of(message))
        return super().error(resp)

    # ------------------------------------------------------------------ the contract

    def connect_form(self, values: Mapping[str, str]) -> list[Field]:
        """The ZIP code first; then the utilities serving it and the utility website's
        username and password. A ZIP code no utility serves is a FieldError."""
        zipcode = str(values.get("zip") or "").strip()
        fields = [Field("zip", "ZIP code of the service address", value=zipcode)]
        if not zipcode:
            return fields
        return [
            *fields,
            Field(
                "utility",
                "Utility",
                kind="choice",
                choices=self.utilities_at(zipcode),
                value=str(values.get("utility") or ""),
            ),
            Field(
                "username",
                "Username on the utility's website",
                value=str(values.get("username") or ""),
            ),
            Field("password", "Password on the utility's website", kind="password"),
        ]

    def utilities_at(self, zipcode: str) -> tuple[tuple[str, str], ...]:
        """(id, name) of the utilities serving a ZIP code; FieldError when none does."""
        try:
            ids = self.find_utilities(zipcode=zipcode)
        except ProviderError as err:
            if err.status in (400, 404):
                raise FieldError(
                    "zip", "No utility found for that ZIP code.", provider=self.slug
                ) from err
            raise
        return tuple((str(uid), str(self.utility(uid).get("name") or uid)) for uid in ids)

    def connect(self, values: Mapping[str, str]) -> Credentials:
        """A profile at the chosen utility with the website's credentials (encrypted to
        WattzOn), and its bill and interval extraction jobs started: they are recorded in
        ``extra["jobs"]`` and :meth:`fetch` is NotReady until they end. A profile that cannot
        be completed is deleted again (no credentials left behind) before the error is raised."""
        fields = {f.name: f for f in self.connect_form(values)}
        if "utility" not in fields:
            raise FieldError("zip", "Give the ZIP code of the service address.", provider=self.slug)
        utility = str(values.get("utility") or "")
        if utility not in dict(fields["utility"].choices):
            raise FieldError("utility", "Choose your utility.", provider=self.slug)
        for name in ("username", "password"):
            if not values.get(name):
                raise FieldError(
                    name, f"Give the {name} of the utility's website.", provider=self.slug
                )
        pid = self.create_profile(
            int(utility), zipcode=str(values["zip"]).strip(), label=values.get("label") or None
        )
        try:
            self.set_credentials(pid, values["username"], values["password"])
            jobs = [self.start_job(pid, mode=mode) for mode in ("bill", "interval")]
        except ProviderError as err:
            try:
                done = self.disconnect(Credentials(account=str(pid)))
            except ProviderError as cleanup:
                done = f"profile {pid} is left at WattzOn: {cleanup.message}"
            more = {"retry_after": err.retry_after} if isinstance(err, RateLimited) else {}
            raise type(err)(
                f"{err.message} ({done})",
                provider=self.slug,
                status=err.status,
                code=err.code,
                body=err.body,
                **more,
            ) from err
        return Credentials(account=str(pid), extra={"jobs": " ".join(jobs)})

    def fetch(
        self,
        credentials: Credentials,
        since: int | None = None,
        *,
        bills: bool = True,
        intervals: bool = True,
        format: str = "json",
        zone: str | None = None,
    ) -> m.Feed:
        """The profile's bills and interval months (those reaching ``since`` or later) as one
        Feed, once the extraction jobs in ``credentials.extra["jobs"]`` have ended (NotReady
        before; a job that failed raises what its status means; the jobs are dropped from
        ``extra`` once they all succeeded). ``zone``: the usage points' IANA time zone; by
        default the zone of the profile's ZIP code's state (:meth:`home_zone`)."""
        self.await_jobs(credentials)
        profile_id = self.profile_id(credentials)
        zone = zone or self.home_zone(profile_id)
        months: dict[str, list[dict[str, Any]]] = {}
        if intervals:
            for period in self.interval_periods(profile_id):
                last = period.get("last_interval")
                if since is not None and last is not None and int(last) < since:
                    continue
                meter = str(period["meter_id"])
                months.setdefault(meter, []).extend(
                    self.month_rows(profile_id, meter, str(period["month_id"]), format)
                )
        records = self.bills(profile_id) if bills else []
        return to_feed(records, months, zone=zone, base=f"{self.base_url}/link/4.0/{profile_id}")

    def home_zone(self, profile_id: int) -> str | None:
        """The time zone of a profile's home: WattzOn gives none, but the profile has the
        service address's ZIP code and ``zips/{zip}`` its state (:func:`timeparams.state_zone`);
        None when neither is known. An outage or a rate limit is raised (asked again later)."""
        try:
            zipcode = str(self.profile(profile_id).get("zipcode") or "")
            state = str(self.zip_info(zipcode).get("state") or "") if zipcode else ""
        except (RateLimited, Unavailable):
            raise
        except ProviderError:
            return None
        return timeparams.state_zone(state)

    def await_jobs(self, credentials: Credentials) -> None:
        """Check the jobs ``credentials.extra["jobs"]`` names: NotReady while any runs; the
        error a failed one means (for good: see the module's docstring); all succeeded: they
        are dropped from ``extra``."""
        statuses = [self.job(j) for j in credentials.extra.get("jobs", "").split()]
        for status in statuses:
            err = status.error()
            if err is not None:
                kind = AuthError if isinstance(err, AuthError) else ProviderError
                raise kind(err.message, provider=self.slug, code=err.code)
        running = [s for s in statuses if not s.finished]
        if running:
            steps = ", ".join(f"{s.job_id[:8]} {s.state or 'queued'}" for s in running)
            raise NotReady(f"extraction still running ({steps})", provider=self.slug)
        credentials.extra.pop("jobs", None)

    def month_rows(
        self, profile_id: int, meter: str, month: str, format: str
    ) -> list[dict[str, Any]]:
        """One month's rows in ``format``, or from the source file where WattzOn has no
        normalized one."""
        try:
            return self.interval_month(profile_id, meter, month, format=format)
        except ProviderError as err:
            if format == "source" or err.code != "normalized_data_not_available":
                raise
        return self.interval_month(profile_id, meter, month, format="source")

    def disconnect(self, credentials: Credentials) -> str:
        """Delete the profile (and its credentials) at WattzOn."""
        if not credentials.account:
            return "no WattzOn profile to delete"
        try:
            self.delete_profile(self.profile_id(credentials))
        except ProviderError as err:
            if err.code != "profile_not_found":
                raise
            return "the profile was already gone at WattzOn"
        return "the profile and its credentials were deleted at WattzOn"

    def notified_accounts(self, body: bytes) -> list[str]:
        """The profile an SQS message body names (ValueError naming what is wrong)."""
        return [str(notification(body).profile_id)]

    def profile_id(self, credentials: Credentials) -> int:
        try:
            return int(credentials.account)
        except ValueError:
            raise ValueError(f"not a WattzOn profile id: {credentials.account!r}") from None

    # ------------------------------------------------------------------ basics and look-ups

    def echo(self, text: str) -> str:
        return str(self.json("GET", "echo", params={"string": text}).get("string"))

    def certificate_info(self) -> dict[str, Any]:
        """The client certificate as WattzOn knows it: client_name, enabled, expiration_date,
        created_date."""
        return dict(self.json("GET", "certificates/info"))

    def zip_info(self, zipcode: str) -> dict[str, Any]:
        return dict(self.json("GET", f"zips/{zipcode}"))

    def find_utilities(
        self, *, zipcode: str | None = None, name: str | None = None, type: str | None = None
    ) -> list[int]:
        """Utility provider ids serving a ZIP code or matching a name (``type``: electricity,
        gas or water)."""
        if not zipcode and not name:
            raise ValueError("give a ZIP code or a name")
        params = {k: v for k, v in (("zipcode", zipcode), ("name", name), ("type", type)) if v}
        answer = self.json("GET", "utilities", params=params)
        return [int(i) for i in answer.get("provider_ids") or ()]

    def utility(self, provider_id: int) -> dict[str, Any]:
        """name, type (comma-separated: electricity, gas, water), lseid, homepage_url."""
        return dict(self.json("GET", f"utilities/{provider_id}"))

    # ------------------------------------------------------------------ profiles and tags

    def profiles(
        self,
        *,
        ids: Iterable[int] | None = None,
        provider: int | None = None,
        start_date: str | None = None,
        end_date: str | None = None,
        tags: Iterable[str] | None = None,
        label: str | None = None,
    ) -> list[int]:
        """Profile ids matching every filter given."""
        params: dict[str, Any] = {
            "id": ",".join(map(str, ids)) if ids is not None else None,
            "provider": provider,
            "start_date": start_date,
            "end_date": end_date,
            "tags": ",".join(tags) if tags is not None else None,
            "label": label,
        }
        answer = self.json(
            "GET", "profiles", params={k: v for k, v in params.items() if v is not None}
        )
        return [int(p) for p in answer.get("profiles") or ()]

    def profile(self, profile_id: int) -> dict[str, Any]:
        return dict(self.json("GET", f"profiles/{profile_id}"))

    def create_profile(
        self, provider_id: int, *, zipcode: str | None = None, label: str | None = None
    ) -> int:
        """A new profile's id."""
        body = {"provider_id": provider_id, "zipcode": zipcode, "label": label}
        answer = self.json(
            "POST", "profiles", json={k: v for k, v in body.items() if v is not None}
        )
        return int(answer.get("profile_id", answer.get("id")))

    def change_profile(self, profile_id: int, **fields: Any) -> dict[str, Any]:
        """Change provider_id, zipcode or label; the profile as it now is."""
        unknown = set(fields) - {"provider_id", "zipcode", "label"}
        if unknown:
            raise ValueError(f"a profile has no field(s) {', '.join(sorted(unknown))}")
        return dict(self.json("PUT", f"profiles/{profile_id}", json=fields))

    def delete_profile(self, profile_id: int) -> None:
        self.request("DELETE", f"profiles/{profile_id}")

    def tags(self, profile_id: int) -> list[str]:
        return [str(t) for t in self.json("GET", f"profiles/{profile_id}/tags").get("tags") or ()]

    def add_tag(self, profile_id: int, name: str) -> bool:
        """Tag a profile; True when the tag was new to WattzOn (201), False when it existed."""
        resp = self.request("POST", f"profiles/{profile_id}/tags", json={"name": name})
        return resp.status_code == 201

    def delete_tag(self, profile_id: int, name: str) -> None:
        self.request("DELETE", f"profiles/{profile_id}/tags", json={"name": name})

    # ------------------------------------------------------------------ sensitive fields

    def transmission_key(self, *, fresh: bool = False) -> TransmissionKey:
        """The public key to encrypt sensitive values with (kept until a minute before it
        expires)."""
        key = self._key
        if fresh or key is None or key.expires - 60 <= time.time():
            answer = self.json("GET", "profiles/keys")
            key = TransmissionKey(str(answer["public_key"]), int(answer["expires"]))
            self._key = key
        return key

    def sensitive_fields(self, profile_id: int) -> list[str]:
        """The names of a profile's sensitive fields (their values cannot be read back)."""
        answer = self.json("GET", f"profiles/{profile_id}/sensitive")
        return [str(f) for f in answer.get("fields") or ()]

    def set_sensitive(
        self, profile_id: int, name: str, value: str, *, replace: bool = False
    ) -> None:
        """Store a sensitive field, encrypted under the transmission key (a key that expired on
        the way is replaced and the value sent once more). An existing field is an error (409)
        unless ``replace``."""
        for attempt in (0, 1):
            key = self.transmission_key(fresh=attempt > 0)
            body = {"field": name, "value": key.encrypt(value)}
            try:
                self.request(
                    "PUT" if replace else "POST", f"profiles/{profile_id}/sensitive", json=body
                )
                return
            except ProviderError as err:
                if err.code != "key_expired" or attempt:
                    raise

    def delete_sensitive(self, profile_id: int, name: str) -> None:
        self.request("DELETE", f"profiles/{profile_id}/sensitive/{name}")

    def set_credentials(
        self, profile_id: int, username: str, password: str, *, replace: bool = False
    ) -> None:
        """The utility website's username and password, which most agents need."""
        self.set_sensitive(profile_id, "username", username, replace=replace)
        self.set_sensitive(profile_id, "password", password, replace=replace)

    # ------------------------------------------------------------------ extraction jobs

    def start_job(self, profile_id: int, *, mode: str = "bill", notify: bool = True) -> str:
        """Start extracting ``bill`` or ``interval`` data; the job id. ``notify``: send the
        SQS notification when it ends."""
        if mode not in ("bill", "interval"):
            raise ValueError(f"mode is bill or interval, not {mode!r}")
        body = {"profile_id": profile_id, "mode": mode, "send_notification": bool(notify)}
        return str(self.json("POST", "jobs", json=body)["job_id"])

    def job(self, job_id: str) -> JobStatus:
        return job_status(self.json("GET", f"jobs/{job_id}"))

    def last_job(self, profile_id: int) -> JobStatus:
        return job_status(self.json("GET", f"jobs/profiles/{profile_id}"))

    def wait(
        self,
        job_id: str,
        *,
        poll: float = 5.0,
        timeout: float = 1800.0,
        progress: Callable[[JobStatus], None] | None = None,
    ) -> JobStatus:
        """Poll a job until it finishes; raise the error an unsuccessful end means (and
        :class:`NotReady` if it is still running after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.job(job_id)
            if progress is not None:
                progress(status)
            if status.finished:
                err = status.error()
                if err is not None:
                    raise err
                return status
            if time.monotonic() >= deadline:
                raise NotReady(
                    f"job {job_id} still {status.state} after {timeout:g} s", provider=self.slug
                )
            self.sleep(poll)

    # ------------------------------------------------------------------ data

    def records(self, path: str, key: str, none_yet: str, **params: Any) -> list[dict[str, Any]]:
        """A data listing: the answer's list (bare, or under ``key``); the 404 whose code is
        ``none_yet`` (nothing extracted yet) is []."""
        try:
            answer = self.json("GET", path, params=params)
        except ProviderError as err:
            if err.code == none_yet:
                return []
            raise
        rows = answer.get(key) if isinstance(answer, dict) else answer
        return [dict(r) for r in rows or ()]

    def bills(self, profile_id: int, job_id: str | None = None) -> list[dict[str, Any]]:
        """Every bill record of a profile (of one job with ``job_id``); none yet is []."""
        params = {"job_id": job_id} if job_id else {}
        return self.records(f"data/bills/{profile_id}", "data", "bills_not_found", **params)

    def bill_pdf(self, profile_id: int, bill_id: str) -> bytes:
        return self.request("GET", f"data/bills/{profile_id}/{bill_id}/pdf").content

    def interval_periods(self, profile_id: int) -> list[dict[str, Any]]:
        """The monthly interval periods available (meter_id, month_id, first_interval,
        last_interval, complete, extraction_time, ...); none yet is []."""
        return self.records(f"data/intervals/{profile_id}", "intervals", "no_intervals_found")

    def interval_month(
        self,
        profile_id: int,
        meter_id: str,
        month: str,
        *,
        format: str = "source",
        zone: str | None = None,
    ) -> list[dict[str, Any]]:
        """One month (YYYY-MM) of a meter's intervals as rows of :data:`INTERVAL_FIELDS` names:
        ``source`` (the seed's default: the utility's own file, read as the module's docstring
        says; ``zone``: the zone of its local times, UTC by default), or normalized by WattzOn
        (``json`` or ``csv``)."""
        if format not in ("source", "json", "csv"):
            raise ValueError("format is source, json or csv")
        resp = self.request(
            "GET",
            f"data/intervals/{profile_id}/{meter_id}/monthly/{month}",
            params={"format": format},
        )
        where = f"{meter_id} {month}"
        if format == "source":
            return source_rows(resp.text, where, zone)
        return interval_rows(resp.text, format, where)


def job_status(answer: dict[str, Any]) -> JobStatus:
    return JobStatus(
        job_id=str(answer.get("job_id") or ""),
        status=str(answer.get("job_status") or ""),
        finished=bool(answer.get("finished")),
        detail=str(answer.get("detail") or ""),
    )


# --------------------------------------------------------------------------- notifications


def notification(body: str | bytes | dict[str, Any]) -> Notification:
    """WattzOn's SQS message body, checked; a wrong one is a ValueError naming the field."""
    try:
        data = json.loads(body) if isinstance(body, str | bytes) else body
    except ValueError as err:
        raise ValueError(f"the notification is not JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError("the notification is not a JSON object")
    if data.get("app", "link") != "link":
        raise ValueError(f"app is {data.get('app')!r}, not 'link'")
    for name in ("profile_id", "job_id", "final_state"):
        if data.get(name) in (None, ""):
            raise ValueError(f"the notification has no {name}")
    numbers = {}
    for name in ("profile_id", "new_records", "existing_records"):
        try:
            numbers[name] = int(data.get(name) or 0)
        except (TypeError, ValueError):
            raise ValueError(f"the notification's {name} is not a number: {data[name]!r}") from None
    return Notification(
        job_id=str(data["job_id"]),
        final_state=str(data["final_state"]),
        mode=str(data.get("mode") or "bill"),
        tags=tuple(str(t) for t in data.get("tags") or ()),
        created_at=str(data.get("created_at") or ""),
        **numbers,
    )


def on_notification(body: str | bytes | dict[str, Any], start: Callable[[Notification], T]) -> T:
    """Handle one SQS message body: check it, then ``start(note)``, which begins fetching the
    profile's data (``note.ok``: the job ended with data; otherwise the fetch records why not).
    A malformed body raises ValueError before anything starts."""
    return start(notification(body))


# --------------------------------------------------------------------------- mapping


def when(value: Any) -> int | None:
    """Epoch seconds from a Unix time or an ISO 8601 text (UTC when it names no zone)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) or str(value).lstrip("-").isdigit():
        return int(value)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def period_end(value: Any) -> int | None:
    """An inclusive end (``2016-10-31T23:59:59``) as the exclusive one ESPI counts to."""
    t = when(value)
    return t + 1 if t is not None and t % 60 == 59 else t


def unit(name: Any, service: ServiceKind | None = None) -> tuple[U, int, ServiceKind]:
    key = str(name or "").strip().lower()
    if key in UNITS:
        return UNITS[key]
    if not key and service is ServiceKind.GAS:
        return UNITS["therms"]
    if not key:
        return UNITS["kwh"]
    raise ProviderError(f"unknown unit {name!r}", provider="wattzon")


def pick(row: dict[str, Any], name: str) -> Any:
    for key in INTERVAL_FIELDS[name]:
        if row.get(key) not in (None, ""):
            return row[key]
    return None


def interval_rows(text: str, format: str, where: str) -> list[dict[str, Any]]:
    """A normalized interval file as rows ``{start, duration, usage, units, direction}``."""
    try:
        if format == "csv":
            rows: list[dict[str, Any]] = list(csv.DictReader(io.StringIO(text)))
            top: dict[str, Any] = {}
        else:
            data = json.loads(text)
            top = data if isinstance(data, dict) else {}
            rows = list(top.get("intervals") or top.get("data") or []) if top else list(data)
    except (ValueError, csv.Error) as err:
        message = f"{where}: unreadable {format} intervals: {err}"
        raise ProviderError(message, provider="wattzon") from None
    out = []
    for n, row in enumerate(rows, 1):
        start, end = when(pick(row, "start")), when(pick(row, "end"))
        duration = pick(row, "duration")
        usage = pick(row, "usage")
        if start is None or usage is None or (end is None and duration is None):
            raise ProviderError(
                f"{where}: interval {n} lacks its start, end or usage: {row}", provider="wattzon"
            )
        out.append(
            {
                "start": start,
                "duration": int(duration) if end is None else end - start,
                "usage": usage,
                "units": pick(row, "units") or pick(top, "units"),
                "direction": str(pick(row, "direction") or "delivered").lower(),
            }
        )
    return out


#: the columns of a Green Button "Download My Data" CSV (a utility's own interval download)
#: that must be there (TYPE and UNITS are read when they are)
GB_CSV = ("DATE", "START TIME", "END TIME", "USAGE")


def source_rows(text: str, where: str, zone: str | None = None) -> list[dict[str, Any]]:
    """A source interval file (the utility's own) as rows: JSON or CSV with
    :data:`INTERVAL_FIELDS` names, or a Green Button CSV (:data:`GB_CSV`; its local times in
    ``zone``, UTC by default). Anything else is a ProviderError that says to ask for a
    normalized format."""
    if text.lstrip()[:1] in ("{", "["):
        return interval_rows(text, "json", where)
    try:
        header = next(csv.reader(io.StringIO(text)), [])
    except csv.Error as err:
        raise ProviderError(f"{where}: unreadable source file: {err}", provider="wattzon") from None
    columns = {c.strip().upper() for c in header}
    if set(GB_CSV) <= columns:
        return green_button_rows(text, where, ZoneInfo(zone) if zone else UTC)
    if any(c.lower() in INTERVAL_FIELDS["start"] for c in columns):
        return interval_rows(text, "csv", where)
    raise ProviderError(
        f"{where}: a source file of unknown form (columns {', '.join(sorted(columns)) or 'none'});"
        " ask for format=json or csv",
        provider="wattzon",
    )


def green_button_rows(text: str, where: str, tz: Any) -> list[dict[str, Any]]:
    """A Green Button CSV's rows. An END TIME one minute short of a 5-minute step (00:14,
    as some utilities write the last minute included) ends at the step; one at or before
    START TIME is on the next day."""
    out = []
    for n, raw in enumerate(csv.DictReader(io.StringIO(text)), 1):
        row = {str(k).strip().upper(): str(v or "").strip() for k, v in raw.items() if k}
        try:
            start = datetime.fromisoformat(f"{row['DATE']}T{row['START TIME']}").replace(tzinfo=tz)
            end = datetime.fromisoformat(f"{row['DATE']}T{row['END TIME']}").replace(tzinfo=tz)
        except (KeyError, ValueError):
            raise ProviderError(
                f"{where}: row {n} lacks a readable DATE, START TIME or END TIME: {raw}",
                provider="wattzon",
            ) from None
        if end <= start:
            end += timedelta(days=1)
        duration = int(end.timestamp() - start.timestamp())
        duration += 60 if duration % 300 == 240 else 0
        if not row.get("USAGE"):
            raise ProviderError(f"{where}: row {n} has no USAGE: {raw}", provider="wattzon")
        kind = row.get("TYPE", "").lower()
        out.append(
            {
                "start": int(start.timestamp()),
                "duration": duration,
                "usage": row["USAGE"],
                "units": row.get("UNITS") or None,
                "direction": "received" if any(w in kind for w in REVERSE) else "delivered",
            }
        )
    return out


@dataclass
class Points:
    """Usage points by (service, identifier), made on first use."""

    zone: str | None
    base: str
    by_key: dict[tuple[ServiceKind, str], m.UsagePoint] = field(default_factory=dict)

    def get(self, service: ServiceKind, ident: str, title: str) -> m.UsagePoint:
        key = (service, ident)
        if key not in self.by_key:
            up = builder.usage_point(service, local_time=self.zone, title=title)
            up.links = [m.Link(rel="self", href=f"{self.base}/UsagePoint/{service.name}-{ident}")]
            self.by_key[key] = up
        return self.by_key[key]


def bill_title(record: dict[str, Any], service: ServiceKind) -> str:
    parts = [service.name.lower(), record.get("service_address"), record.get("account_number")]
    return " ".join(str(p) for p in parts if p)


def bill_summary(up: m.UsagePoint, record: dict[str, Any], base: str) -> m.UsageSummary | None:
    """An electricity, gas or water bill record as a UsageSummary."""
    start, end = when(record.get("start_date")), period_end(record.get("end_date"))
    if start is None or end is None:
        date = when(record.get("date") or record.get("bill_date"))
        if date is None:
            return None
        start, end = date - 30 * 86400, date  # older agents: one interpolated date
    items = []
    exported = record.get("exported_energy")
    uom, exponent, _ = unit(record.get("units"), up.kind)
    consumption: dict[str, Any] = {}
    if record.get("usage") is not None:
        power, (value,) = builder.scaled([record["usage"]], exponent)
        consumption = {"consumption": value, "uom": uom, "power_of_ten": int(power)}
    if exported not in (None, "", 0):
        power, (value,) = builder.scaled([exported], exponent)
        items.append(
            builder.line_item(
                "Exported energy",
                0,
                ItemKind.INFORMATION,
                measurement=m.SummaryMeasurement(
                    uom=uom, power_of_ten_multiplier=power, value=value
                ),
            )
        )
    summary = builder.usage_summary(
        up,
        start=start,
        end=end,
        bill=None if record.get("cost") is None else builder.decimal(record["cost"]),
        line_items=items,
        status_time_stamp=when(record.get("bill_date")) or end,
        tariff_profile=record.get("rate_plan") or None,
        **consumption,
    )
    if record.get("bill_id"):
        summary.links = [m.Link(rel="self", href=f"{base}/UsageSummary/{record['bill_id']}")]
    return summary


#: a billing record's amounts: field -> (note, kind, sign)
BALANCES = (
    ("previous_balance", "Previous balance", ItemKind.INFORMATION, 1),
    ("payment_received", "Payment received", ItemKind.PAYMENT, -1),
    ("past_due_balance", "Past due balance", ItemKind.INFORMATION, 1),
    ("total_amount_due", "Total amount due", ItemKind.INFORMATION, 1),
)


def billing_items(record: dict[str, Any]) -> list[m.LineItem]:
    """A ``billing`` record's balances, payment, due and payment dates and current charges (all
    services) as line items."""
    items = [
        builder.line_item(note, sign * builder.decimal(record[key]), kind)
        for key, note, kind, sign in BALANCES
        if record.get(key) not in (None, "")
    ]
    for key, note in (("due_date", "Due date"), ("payment_date", "Payment date")):
        if record.get(key):
            items.append(
                builder.line_item(note, 0, ItemKind.INFORMATION, date_time=when(record[key]))
            )
    return items


def billing_summary(
    up: m.UsagePoint, record: dict[str, Any], bills: dict[str, m.UsageSummary]
) -> m.UsageSummary | None:
    """A ``billing`` record (balances, payments, due date): line items on the utility bill of
    the same date (``bills``, by bill_date; electricity first), else a UsageSummary of its own
    over its period or the day it was issued."""
    items = billing_items(record)
    same = bills.get(str(record.get("bill_date") or ""))
    if same is not None:
        same.cost_additional_detail_last_period += items
        if record.get("current_charges") not in (None, ""):
            same.cost_additional_detail_last_period.append(
                builder.line_item(
                    "Current charges (all services)",
                    record["current_charges"],
                    ItemKind.INFORMATION,
                )
            )
        return same
    start, end = when(record.get("start_date")), period_end(record.get("end_date"))
    issued = when(record.get("bill_date"))
    if start is None or end is None:
        if issued is None:
            return None
        start, end = issued, issued + 86400
    charges = record.get("current_charges")
    summary = builder.usage_summary(
        up,
        start=start,
        end=end,
        bill=None if charges in (None, "") else builder.decimal(charges),
        line_items=items,
        status_time_stamp=issued or end,
    )
    summary.commodity = None  # the account's balance, not one commodity's
    return summary


def interval_readings(
    up: m.UsagePoint, rows: list[dict[str, Any]], service: ServiceKind, meter: str
) -> None:
    """A meter's interval rows as MeterReadings: delivered energy, and received (reverse flow)
    when there is any."""
    for reverse in (False, True):
        part = [r for r in rows if (r["direction"] in REVERSE) is reverse]
        if not part:
            continue
        by_start = {r["start"]: r for r in part}  # months may share an edge
        part = [by_start[t] for t in sorted(by_start)]
        uom, exponent, _ = unit(part[0]["units"], service)
        power, values = builder.scaled((r["usage"] for r in part), exponent)
        lengths = {r["duration"] for r in part}
        rt = builder.reading_type(
            uom,
            power_of_ten=int(power),
            interval_length=lengths.pop() if len(lengths) == 1 else None,
            flow=FlowDirectionKind.REVERSE if reverse else FlowDirectionKind.FORWARD,
            commodity=builder.COMMODITY.get(service),
            kind=MeasurementKind.VOLUME if uom in (U.FT3, U.US_GAL) else MeasurementKind.ENERGY,
        )
        series = [(r["start"], r["duration"], v) for r, v in zip(part, values, strict=True)]
        title = f"{'Received' if reverse else 'Delivered'} ({meter})"
        builder.meter_reading(up, rt, series, title=title)


def to_feed(
    records: Iterable[dict[str, Any]],
    months: dict[str, list[dict[str, Any]]] | None = None,
    *,
    zone: str | None = None,
    base: str = WattzOn.default_base,
) -> m.Feed:
    """WattzOn's bill records and normalized interval rows (per meter id) as an ESPI Feed."""
    points = Points(zone, base)
    records = list(records)
    bills: dict[str, m.UsageSummary] = {}  # bill_date -> its utility bill (electricity first)
    for record in records:
        service = SERVICES.get(str(record.get("type") or "").lower())
        if service is None:
            continue
        ident = str(
            record.get("meter_number") or record.get("service_id") or record.get("account_number")
        )
        up = points.get(service, ident, bill_title(record, service))
        summary = bill_summary(up, record, points.base)
        date = str(record.get("bill_date") or "")
        if (
            summary is not None
            and date
            and (date not in bills or service is ServiceKind.ELECTRICITY)
        ):
            bills[date] = summary
    for meter, rows in (months or {}).items():
        if not rows:
            continue
        _, _, service = unit(rows[0]["units"])
        up = next(
            (up for (kind, ident), up in points.by_key.items() if ident == meter),
            None,
        ) or points.get(service, meter, f"{service.name.lower()} meter {meter}")
        interval_readings(up, rows, up.kind or service, meter)
    billed = [r for r in records if str(r.get("type") or "").lower() == "billing"]
    if billed:  # on the electricity usage point, else the first (as the account's)
        ups = sorted(points.by_key.items(), key=lambda kv: kv[0][0] is not ServiceKind.ELECTRICITY)
        up = ups[0][1] if ups else points.get(ServiceKind.ELECTRICITY, "account", "account")
        for record in billed:
            billing_summary(up, record, bills)
    return builder.feed(*points.by_key.values(), title="WattzOn Link usage")
