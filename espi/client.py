"""The Green Button Connect My Data client: a data custodian's OAuth 2.0 and ESPI resources
(PG&E's Share My Data and custodians like it), on the provider base's request loop.

    from espi.client import Custodian, profile
    pge = Custodian(profile("pge", client_id=ID, client_secret=SECRET,
                            client_cert="crt.pem", client_key="key.pem"))
    start = pge.begin_connect("", "https://app.example/callback")  # browser -> start.url
    credentials = pge.finish_connect(start.state, callback_query)  # code -> tokens
    feed = pge.fetch(credentials, since)       # 200: a Feed; 202: espi.NotReady (notification)
    got = pge.download(uri, "bulk.xml")        # streamed to disk: Downloaded, or Accepted (202)

- Tokens: the resource path decides which one a request carries (:func:`token_kind`): the
  third party's client token (client credentials, cached until a minute before it expires) for
  Bulk, Authorization, ReadServiceStatus...; a customer's access token (renewed with the refresh
  token when it is about to expire; the renewed pair is in the credentials, for the caller to
  store) for its Subscription.
- Origin: every URI is normalised (:func:`normalize_uri`: dot segments, percent-encoded dots
  and slashes, default ports, case, empty segments) before it is checked against the profile's
  resource base (the token endpoint aside); anything outside is :class:`UnsafeURI`, and no
  redirect is followed.
- Errors: :class:`espi.ProviderError` and its kinds, as for every provider; 5xx, 429 and
  refused connections are retried a bounded number of times (the base's loop).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
import string
import tempfile
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from functools import lru_cache
from typing import Any, ClassVar, Protocol, Self
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import requests

from .errors import AuthError, NotReady, ProviderError, Unavailable
from .model import Feed
from .providers import register
from .providers.base import (
    DEFAULT_PORTS,
    Capabilities,
    ConnectKind,
    Credentials,
    DataKind,
    Provider,
    Redirect,
    Setting,
    retry_after,
)
from .reader import ParseOptions, parse

log = logging.getLogger(__name__)

PGE = "https://api.pge.com"
#: bytes read from a download at a time
CHUNK = 1 << 16
#: a token this close to its expiry (seconds) is renewed first
EARLY = 60
#: the largest notification body read
NOTIFICATION_LIMIT = 1 << 20


class UnsafeURI(ProviderError, ValueError):
    """A URI refused before anything was sent: malformed, ambiguous, or outside the resource
    base it must lie under. ``uri`` is the URI as given."""

    def __init__(self, message: str, *, uri: str) -> None:
        self.uri = uri
        super().__init__(message, provider=Custodian.slug)


# --------------------------------------------------------------------------- URIs

UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
#: every character a URI may hold as written (RFC 3986), the percent sign included
URI_CHARACTERS = UNRESERVED | frozenset(":/?#[]@!$&'()*+,;=%")
ESCAPE = re.compile(r"%(..)?")
HOST = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]+")
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def _unescape(text: str, uri: str, in_path: bool) -> str:
    """Percent-escapes decoded where they stand for an unreserved character (and, in a path, a
    slash: an encoded slash does not hide a segment boundary); the others in upper case."""

    def one(match: re.Match[str]) -> str:
        hex_ = match.group(1) or ""
        if not all(c in string.hexdigits for c in hex_) or len(hex_) != 2:
            raise UnsafeURI(f"refused {uri}: '%' not followed by two hex digits", uri=uri)
        char = chr(int(hex_, 16))
        if char in UNRESERVED or (in_path and char == "/"):
            return char
        if in_path and char in "%\\":
            what = "'%' (double encoding)" if char == "%" else "backslash"
            raise UnsafeURI(f"refused {uri}: an encoded {what} in the path", uri=uri)
        return f"%{hex_.upper()}"

    return ESCAPE.sub(one, text)


def _path(path: str, uri: str) -> str:
    if ";" in path:
        raise UnsafeURI(f"refused {uri}: path parameters (';') are not accepted", uri=uri)
    segments: list[str] = []
    for segment in _unescape(path, uri, in_path=True).split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    return "/" + "/".join(segments)


@lru_cache(maxsize=1024)  # the same URIs are checked again and again (bases, each notified URI)
def normalize_uri(uri: str) -> str:
    """``uri`` in the one form it is checked and sent in: scheme and host in lower case, the
    default port (80 for http, 443 for https) left out, percent-escapes of unreserved
    characters decoded and the others in upper case, encoded slashes decoded, dot segments
    resolved, empty segments (and a trailing slash) removed, the fragment dropped.

    Refused (:class:`UnsafeURI`): schemes other than http and https, user information, spaces,
    control, backslash and non-ASCII characters, malformed escapes, an encoded ``%`` or
    backslash in the path, path parameters (``;``), and any URI the HTTP client would send
    differently from what is returned (so what was checked is what goes on the wire)."""
    bad = next((c for c in uri if c not in URI_CHARACTERS), None)
    if bad is not None:
        raise UnsafeURI(
            f"refused {uri!r}: {bad!r} does not belong in a URI (spaces, control characters, "
            "backslashes and non-ASCII characters are refused)",
            uri=uri,
        )
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as err:
        raise UnsafeURI(f"refused {uri}: {err}", uri=uri) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsafeURI(f"refused {uri}: only http and https URIs are fetched", uri=uri)
    if "@" in parts.netloc:
        raise UnsafeURI(f"refused {uri}: user information in a URI is not accepted", uri=uri)
    host = (parts.hostname or "").rstrip(".")
    if not HOST.fullmatch(host):
        raise UnsafeURI(f"refused {uri}: no host, or not a host name or address", uri=uri)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    query = _unescape(parts.query, uri, in_path=False)
    out = urlunsplit((scheme, netloc, _path(parts.path, uri), query, ""))
    sent = requests.PreparedRequest()
    sent.prepare_url(out, None)
    if sent.url != out:
        raise UnsafeURI(f"refused {uri}: it would be sent as {sent.url}, not {out}", uri=uri)
    return out


def check_uri(uri: str, base: str, params: Collection[str] | None = None) -> str:
    """The normalised ``uri`` when it lies under ``base`` (same scheme, host and port; the
    base's path, segment by segment), else :class:`UnsafeURI` naming both.

    ``params``: the only query parameter names allowed, each at most once, put in order (a
    notification URI: PG&E's ``correlationID``); None: any query."""
    norm, root = normalize_uri(uri), normalize_uri(base)
    u, b = urlsplit(norm), urlsplit(root)
    prefix = b.path.rstrip("/") + "/"
    if (u.scheme, u.netloc) != (b.scheme, b.netloc) or not (
        u.path == b.path or u.path.startswith(prefix)
    ):
        resolved = f" (it resolves to {norm})" if norm != uri else ""
        raise UnsafeURI(f"refused {uri}: outside the resource base {root}{resolved}", uri=uri)
    if params is None:
        return norm
    pairs = parse_qsl(u.query, keep_blank_values=True)
    names = [name for name, _ in pairs]
    unknown = sorted({n for n in names if n not in params})
    if unknown or len(set(names)) != len(names):
        allowed = ", ".join(sorted(params)) or "none"
        what = f"query parameter(s) {', '.join(unknown)}" if unknown else "a repeated parameter"
        raise UnsafeURI(
            f"refused {uri}: {what}; the notifications of {root} carry only: {allowed}", uri=uri
        )
    query = urlencode(sorted(pairs), quote_via=quote)
    return urlunsplit((u.scheme, u.netloc, u.path, query, ""))


def within(uri: str, base: str) -> bool:
    """Whether ``uri``, normalised, lies under ``base`` (see :func:`check_uri`)."""
    try:
        check_uri(uri, base)
    except UnsafeURI:
        return False
    return True


# --------------------------------------------------------------------------- token kinds


class TokenKind(StrEnum):
    CLIENT = "client"  # the third party's own token (client credentials)
    CUSTOMER = "customer"  # a customer's access token, for its subscription only
    REGISTRATION = "registration"  # the registration access token (ApplicationInformation)


#: resources (by their first path segments under the resource base) read with a token other
#: than the customer's; everything else is a customer's subscription data
TOKEN_KINDS: dict[tuple[str, ...], TokenKind] = {
    ("Batch", "Bulk"): TokenKind.CLIENT,
    ("Batch", "BulkRetailCustomerInfo"): TokenKind.CLIENT,
    ("Batch", "BulkRetailDRPrgInfo"): TokenKind.CLIENT,
    ("Authorization",): TokenKind.CLIENT,
    ("ReadServiceStatus",): TokenKind.CLIENT,
    ("DownloadSampleData",): TokenKind.CLIENT,
    ("ApplicationInformation",): TokenKind.REGISTRATION,
}


def token_kind(path: str) -> TokenKind:
    """The token a resource is read with, from its path under the resource base
    (``Batch/Bulk/1`` -> CLIENT, ``Batch/Subscription/5`` -> CUSTOMER). Only whole path
    segments count: a query string naming ``/Batch/Bulk/`` changes nothing."""
    segments = tuple(s for s in urlsplit(path).path.split("/") if s)
    for prefix, kind in TOKEN_KINDS.items():
        if segments[: len(prefix)] == prefix:
            return kind
    return TokenKind.CUSTOMER


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True, slots=True)
class CustodianProfile:
    """Where a custodian's OAuth endpoints and resources are, who we are there, and how it
    behaves."""

    name: str
    title: str = ""
    authorize_url: str = ""  # not needed for bulk-only or client-only use
    token_url: str = ""
    resource_base: str = ""  # .../espi/1_1/resource
    client_id: str = ""
    client_secret: str = ""
    scope: str = ""
    bulk_id: str = ""
    registration_token: str = ""  # for ApplicationInformation (else the client token)
    application_information_id: str = ""
    pkce: bool = False  # PG&E does not document PKCE
    client_cert: str = ""  # PEM file for mutual TLS
    client_key: str = ""
    ca_bundle: str = ""  # verify the custodian against this CA (default: the system's)
    published_format: str = "iso"  # published-min/max: "iso" (2024-01-01T00:00:00Z) or "epoch"
    requests_per_second: float = 1.0  # PG&E's limit
    #: the query parameters the custodian's notification URIs carry (others are refused)
    notification_params: tuple[str, ...] = ("correlationID",)
    quirks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.published_format not in ("iso", "epoch"):
            raise ValueError(
                f"custodian {self.name}: published_format is 'iso' or 'epoch', "
                f"not {self.published_format!r}"
            )
        if not self.requests_per_second > 0:
            raise ValueError(f"custodian {self.name}: requests_per_second must be above 0")

    @property
    def cert(self) -> tuple[str, str] | None:
        return (self.client_cert, self.client_key or self.client_cert) if self.client_cert else None

    @property
    def verify(self) -> str | None:
        return self.ca_bundle or None

    def resource(self, path: str) -> str:
        """A URI under the resource base (an absolute URI is taken as it is), normalised and
        checked (:class:`UnsafeURI` when it lies outside)."""
        uri = path if SCHEME.match(path) else f"{self.resource_base.rstrip('/')}/{path}"
        return check_uri(uri, self.resource_base)

    def notified(self, uri: str) -> str:
        """A URI a notification named, normalised, when it lies under the resource base and
        carries no query parameter but :attr:`notification_params` (the form to record)."""
        return check_uri(uri, self.resource_base, self.notification_params)

    def relative(self, uri: str) -> str:
        """The path of a checked URI under the resource base."""
        base = urlsplit(normalize_uri(self.resource_base)).path.rstrip("/")
        return urlsplit(uri).path[len(base) :].lstrip("/")

    def bulk_uri(self) -> str:
        if not self.bulk_id:
            raise ValueError(f"custodian {self.name}: no bulk_id configured")
        return self.resource(f"Batch/Bulk/{self.bulk_id}")

    def published(self, since: int | None = None, until: int | None = None) -> dict[str, str]:
        """``published-min`` / ``published-max`` in the custodian's form."""
        out: dict[str, str] = {}
        for key, value in (("published-min", since), ("published-max", until)):
            if value is not None:
                out[key] = (
                    str(int(value))
                    if self.published_format == "epoch"
                    else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))
                )
        return out

    def configure(self, values: Mapping[str, Any]) -> CustodianProfile:
        """This profile with settings changed (strings from the environment converted: "true",
        "1.5", "a,b"); an unknown name is a ValueError listing the known ones."""
        known = {f.name for f in fields(self)} - {"name"}
        unknown = set(values) - known
        if unknown:
            raise ValueError(
                f"custodian {self.name}: unknown setting(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        return replace(self, **{k: _coerce(self, k, v) for k, v in values.items()})


def _coerce(profile: CustodianProfile, name: str, value: Any) -> Any:
    kind = type(getattr(profile, name))
    if not isinstance(value, str) or kind is str:
        return tuple(value) if kind is tuple else value
    if kind is bool:
        return value.strip().lower() in ("1", "true", "yes", "on")
    if kind is float:
        return float(value)
    return tuple(v.strip() for v in value.split(",") if v.strip())


BUILT_IN: dict[str, CustodianProfile] = {
    "pge": CustodianProfile(
        "pge",
        "PG&E Share My Data",
        f"{PGE}/datacustodian/oauth/v2/authorize",
        f"{PGE}/datacustodian/oauth/v2/token",
        f"{PGE}/GreenButtonConnect/espi/1_1/resource",
        quirks=(
            "client_access_token key",
            "mutual TLS required",
            "Batch answers 202 then notifies",
        ),
    ),
    "pge-test": CustodianProfile(
        "pge-test",
        "PG&E Share My Data (test OAuth)",
        f"{PGE}/datacustodian/test/oauth/v2/authorize",
        f"{PGE}/datacustodian/test/oauth/v2/token",
        f"{PGE}/GreenButtonConnect/espi/1_1/resource",
    ),
    "local": CustodianProfile(
        "local",
        "Local sandbox (datacustodian)",
        "http://127.0.0.1:5001/datacustodian/oauth/v2/authorize",
        "http://127.0.0.1:5001/datacustodian/oauth/v2/token",
        "http://127.0.0.1:5001/GreenButtonConnect/espi/1_1/resource",
        pkce=True,
        requests_per_second=10.0,
    ),
}


def profile(name: str, **values: Any) -> CustodianProfile:
    """A built-in profile (``pge``, ``pge-test``, ``local``) with ``values`` set, or a new
    one named ``name`` (then ``token_url`` and ``resource_base`` are needed)."""
    base = BUILT_IN.get(name) or CustodianProfile(name, name)
    made = base.configure(values)
    lacking = [k for k in ("token_url", "resource_base") if not getattr(made, k)]
    if lacking:
        known = ", ".join(sorted(BUILT_IN))
        raise ValueError(f"custodian {name}: set {', '.join(lacking)} (or use one of: {known})")
    return made


def profiles(
    configured: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, CustodianProfile]:
    """The built-in profiles with ``configured`` applied: ``{name: {setting: value}}`` changes
    a built-in profile or adds one."""
    out = dict(BUILT_IN)
    for name, values in (configured or {}).items():
        out[name] = profile(name, **values)
    return out


def owner(uri: str, candidates: Iterable[CustodianProfile]) -> CustodianProfile | None:
    """The profile whose resource base ``uri`` (normalised) lies under; None: a foreign URI."""
    return next((p for p in candidates if within(uri, p.resource_base)), None)


# --------------------------------------------------------------------------- answers


class Writable(Protocol):
    def write(self, data: bytes, /) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Downloaded:
    """A 200 answer, written out."""

    uri: str  # the normalised URI asked
    size: int  # bytes written
    content_type: str


@dataclass(frozen=True, slots=True)
class Accepted:
    """A 202 answer: the custodian prepares the data and will POST a BatchList naming it to the
    third party's notification URI."""

    uri: str
    retry_after: float | None = None


@dataclass(slots=True)
class Ready:
    """A 200 answer whose body is still to be read (:meth:`chunks`, :meth:`save`)."""

    uri: str
    response: requests.Response
    provider: str

    @property
    def content_type(self) -> str:
        return str(self.response.headers.get("Content-Type", ""))

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        """The body, a chunk at a time; a connection that breaks off is :class:`Unavailable`."""
        done = 0
        try:
            for chunk in self.response.iter_content(size):
                done += len(chunk)
                yield chunk
        except requests.RequestException as err:
            raise Unavailable(
                f"GET {self.uri}: the answer broke off after {done:,} bytes: {err}",
                provider=self.provider,
                status=self.response.status_code,
            ) from None

    def save(
        self, out: str | os.PathLike[str] | Writable, max_bytes: int | None = None
    ) -> Downloaded:
        """Stream the body to a binary file, or to a path (through ``PATH.partial``, renamed
        when complete: a failure leaves nothing). ``max_bytes``: refuse a longer body."""
        if isinstance(out, str | os.PathLike):
            tmp = f"{os.fspath(out)}.partial"
            try:
                with open(tmp, "wb") as f:
                    got = self.save(f, max_bytes)
                os.replace(tmp, out)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            return got
        size = 0
        for chunk in self.chunks():
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise ProviderError(
                    f"GET {self.uri}: the document is larger than {max_bytes:,} bytes",
                    provider=self.provider,
                    status=self.response.status_code,
                )
            out.write(chunk)
        return Downloaded(self.uri, size, self.content_type)


# --------------------------------------------------------------------------- the client

#: OAuth error codes (RFC 6749 5.2, 6750 3.1) that mean the credentials do not work
OAUTH_ERRORS: dict[str, type[ProviderError]] = {
    code: AuthError
    for code in (
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "invalid_token",
        "insufficient_scope",
        "access_denied",
    )
}


@register
class Custodian(Provider):
    """A Green Button Connect My Data custodian, as one profile describes it.

    ``kwargs`` go to :class:`espi.providers.base.Provider` (``session``, ``timeout``,
    ``retries``, ``backoff``, ``max_wait``, ``sleep``, ``throttle``: a callable run before every
    request, e.g. a rate limiter shared across processes; by default this client keeps the
    profile's ``requests_per_second``). The profile's certificate and CA bundle go with every
    request (mutual TLS), the token requests included. No redirect is followed.
    """

    slug = "custodian"
    title = "Green Button Connect My Data"
    default_base = BUILT_IN["pge"].resource_base
    codes = OAUTH_ERRORS
    capabilities: ClassVar[Capabilities] = Capabilities(
        connect=ConnectKind.OAUTH,
        data=frozenset({DataKind.INTERVALS, DataKind.BILLS, DataKind.CUSTOMER}),
        notifications=True,
    )
    settings: ClassVar[tuple[Setting, ...]] = (
        Setting("profile", default="pge", help="a built-in profile: pge, pge-test, local"),
        Setting("client_id", required=True, help="the id the custodian registered us under"),
        Setting("client_secret", required=True, secret=True),
        Setting("authorize_url", required=True, help="where customers give consent"),
        Setting("token_url", required=True),
        Setting("resource_base", required=True, help="…/espi/1_1/resource"),
        Setting("scope", help="the scope asked for (default: the registered one)"),
        Setting("bulk_id", help="our BulkID (Batch/Bulk/{BulkID})"),
        Setting("registration_token", secret=True, help="reads ApplicationInformation"),
        Setting("application_information_id"),
        Setting("pkce", help="send PKCE (S256): true or false"),
        Setting("client_cert", help="PEM certificate for mutual TLS"),
        Setting("client_key", help="its private key (PEM)"),
        Setting("ca_bundle", help="CA bundle for the custodian's certificate"),
        Setting("published_format", help="published-min/max as 'iso' or 'epoch'"),
        Setting("requests_per_second", help="the custodian's rate limit"),
        Setting("notification_params", help="query parameters of notification URIs"),
        Setting("title"),
    )

    def __init__(self, profile: CustodianProfile, **kwargs: Any) -> None:
        super().__init__(
            base_url=profile.resource_base,
            cert=profile.cert,
            verify=profile.verify,
            requests_per_second=profile.requests_per_second,
            max_redirects=0,
            **kwargs,
        )
        self.profile = profile
        self._client_token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, values: Mapping[str, Any], **kwargs: Any) -> Self:
        """A client for ``values["profile"]`` (default ``pge``) with the other settings
        applied (see :attr:`settings`)."""
        rest = dict(values)
        name = str(rest.pop("profile", "") or "pge")
        lacking = cls.missing(values)
        if lacking:
            raise ValueError(f"custodian {name}: set {', '.join(lacking)}")
        return cls(profile(name, **rest), **kwargs)

    @classmethod
    def missing(cls, values: Mapping[str, Any]) -> list[str]:
        rest = dict(values)
        base = BUILT_IN.get(str(rest.pop("profile", "") or "pge"))
        made = (base or CustodianProfile("new")).configure(rest)
        return [s.name for s in cls.settings if s.required and not getattr(made, s.name)]

    # ------------------------------------------------------------------ requests

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def url(self, path: str) -> str:
        """Every request's URI: the token endpoint, or a URI under the resource base."""
        if SCHEME.match(path) and normalize_uri(path) == normalize_uri(self.profile.token_url):
            return normalize_uri(path)
        return self.profile.resource(path)

    def token_request(self, **form: str) -> dict[str, Any]:
        """POST to the token endpoint with HTTP Basic client authentication (RFC 6749 2.3.1:
        id and secret form-encoded first)."""
        pair = (
            f"{quote(self.profile.client_id, safe='')}:{quote(self.profile.client_secret, safe='')}"
        )
        basic = base64.b64encode(pair.encode()).decode()
        answer = self.json(
            "POST",
            self.profile.token_url,
            data=form,
            headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
        )
        if not isinstance(answer, dict):
            raise ProviderError(
                f"the token endpoint answered {type(answer).__name__}, not an object",
                provider=self.slug,
            )
        return answer

    def client_token(self) -> str:
        """The third party's own token (client credentials; PG&E answers it under
        ``client_access_token``), kept until a minute before it expires."""
        with self._lock:
            cached = self._client_token
            if cached and cached[1] > time.time() + EARLY:
                return cached[0]
        answer = self.token_request(grant_type="client_credentials")
        token = answer.get("client_access_token") or answer.get("access_token")
        if not token:
            raise ProviderError(
                "the client-credentials answer has no client_access_token",
                provider=self.slug,
                body=str(answer),
            )
        with self._lock:
            self._client_token = (str(token), time.time() + _seconds(answer.get("expires_in")))
        return str(token)

    def credentials_of(
        self, answer: Mapping[str, Any], old: Credentials | None = None
    ) -> Credentials:
        """Credentials from a token answer (the Subscription and Authorization URIs checked
        against the resource base; missing ones kept from ``old``)."""
        token = answer.get("access_token")
        if not token:
            raise ProviderError(
                "the token answer has no access_token", provider=self.slug, body=str(answer)
            )
        extra = dict(old.extra) if old else {}
        account = old.account if old else ""
        if answer.get("resourceURI"):
            account = self.profile.resource(str(answer["resourceURI"]))
        if answer.get("authorizationURI"):
            extra["authorizationURI"] = self.profile.resource(str(answer["authorizationURI"]))
        if answer.get("scope"):
            extra["scope"] = str(answer["scope"])
        return Credentials(
            account=account,
            access_token=str(token),
            refresh_token=answer.get("refresh_token") or (old.refresh_token if old else None),
            expires_at=int(time.time() + _seconds(answer.get("expires_in"))),
            extra=extra,
        )

    def refresh(self, credentials: Credentials) -> Credentials:
        """New tokens for a customer (custodians issue a new refresh token and forget the old
        one: store what this returns). AuthError when the refresh token is refused."""
        if not credentials.refresh_token:
            raise AuthError(
                "the access token expired and there is no refresh token", provider=self.slug
            )
        answer = self.token_request(
            grant_type="refresh_token", refresh_token=credentials.refresh_token
        )
        log.info("renewed the tokens of %s", credentials.account or "a customer")
        return self.credentials_of(answer, credentials)

    def renew(self, credentials: Credentials) -> None:
        """:meth:`refresh`, written into ``credentials``."""
        new = self.refresh(credentials)
        credentials.access_token, credentials.refresh_token = new.access_token, new.refresh_token
        credentials.expires_at, credentials.account = new.expires_at, new.account
        credentials.extra = new.extra

    def customer_token(self, credentials: Credentials) -> str:
        """The customer's access token, renewed in ``credentials`` first when it expires within a
        minute."""
        if credentials.expires_at and credentials.expires_at - EARLY <= time.time():
            self.renew(credentials)
        if not credentials.access_token:
            raise AuthError("no access token for this customer", provider=self.slug)
        return credentials.access_token

    def token_for(self, uri: str, credentials: Credentials | None) -> tuple[TokenKind, str]:
        """The kind of token a (checked) URI is read with, and the token."""
        kind = token_kind(self.profile.relative(uri))
        if kind is TokenKind.REGISTRATION and self.profile.registration_token:
            return kind, self.profile.registration_token
        if kind is TokenKind.CUSTOMER:
            if credentials is None:
                raise AuthError(f"{uri} is read with a customer's access token", provider=self.slug)
            return kind, self.customer_token(credentials)
        return TokenKind.CLIENT, self.client_token()

    @contextlib.contextmanager
    def get(
        self,
        uri: str,
        *,
        credentials: Credentials | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Iterator[Ready | Accepted]:
        """GET a resource (a URI under the resource base, or a path relative to it) with the
        token its path calls for, streamed: :class:`Ready` (200, body unread) or
        :class:`Accepted` (202). A customer's token refused with 401 is renewed once."""
        checked = self.profile.resource(uri)
        kind, token = self.token_for(checked, credentials)
        query = dict(params or {})
        try:
            resp = self.request("GET", checked, token=token, params=query, stream=True)
        except AuthError as err:
            if err.status != 401 or credentials is None or kind is not TokenKind.CUSTOMER:
                raise
            self.renew(credentials)
            resp = self.request(
                "GET", checked, token=credentials.access_token, params=query, stream=True
            )
        try:
            if resp.status_code == 202:
                yield Accepted(checked, retry_after(resp.headers.get("Retry-After")))
            elif resp.status_code == 200:
                yield Ready(checked, resp, self.slug)
            else:
                raise ProviderError(
                    f"GET {checked}: HTTP {resp.status_code} where 200 or 202 was expected",
                    provider=self.slug,
                    status=resp.status_code,
                )
        finally:
            resp.close()

    def download(
        self,
        uri: str,
        out: str | os.PathLike[str] | Writable,
        *,
        credentials: Credentials | None = None,
        params: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
    ) -> Downloaded | Accepted:
        """:meth:`get` a resource and stream it to ``out`` (a binary file, or a path written
        through ``PATH.partial``); the whole document is never in memory."""
        with self.get(uri, credentials=credentials, params=params) as answer:
            if isinstance(answer, Accepted):
                return answer
            return answer.save(out, max_bytes)

    # ------------------------------------------------------------------ the provider contract

    def begin_connect(self, account: str, redirect_uri: str) -> Redirect:
        """The custodian's authorize URL with ``state`` (and PKCE S256 where the profile says);
        ``account`` is not used (the customer chooses at the custodian). Keep ``state`` in the
        customer's session until :meth:`finish_connect`."""
        state = {"state": secrets.token_urlsafe(32), "redirect_uri": redirect_uri}
        query = {
            "response_type": "code",
            "client_id": self.profile.client_id,
            "redirect_uri": redirect_uri,
            "state": state["state"],
        }
        if self.profile.scope:
            query["scope"] = self.profile.scope
        if self.profile.pkce:
            state["code_verifier"] = secrets.token_urlsafe(64)
            digest = hashlib.sha256(state["code_verifier"].encode()).digest()
            query["code_challenge"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            query["code_challenge_method"] = "S256"
        url = self.profile.authorize_url
        if not url:
            raise ValueError(f"custodian {self.profile.name}: no authorize_url configured")
        return Redirect(f"{url}{'&' if '?' in url else '?'}{urlencode(query)}", state)

    def finish_connect(self, state: Mapping[str, str], answer: Mapping[str, str]) -> Credentials:
        """Check the callback's ``state`` and exchange its code for tokens. The credentials'
        ``account`` is the Subscription (``resourceURI``), ``extra`` holds
        ``authorizationURI`` and ``scope``. AuthError: declined, or not our request."""
        if answer.get("error"):
            declined = answer["error"] == "access_denied"
            raise AuthError(
                "the customer declined to share their data"
                if declined
                else f"the custodian refused: {answer.get('error_description') or ''}".rstrip(": "),
                provider=self.slug,
                code=answer["error"],
            )
        expected, got = state.get("state", ""), answer.get("state", "")
        if not expected or not hmac.compare_digest(expected.encode(), got.encode()):
            raise AuthError(
                "the answer does not match this session's request (an old or forged link)",
                provider=self.slug,
                code="mismatching_state",
            )
        if not answer.get("code"):
            raise AuthError("the answer carries no authorization code", provider=self.slug)
        form = {
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": state.get("redirect_uri", ""),
        }
        if state.get("code_verifier"):
            form["code_verifier"] = state["code_verifier"]
        credentials = self.credentials_of(self.token_request(**form))
        if not credentials.account:
            raise ProviderError(
                "the token answer names no subscription (resourceURI)", provider=self.slug
            )
        return credentials

    def fetch(self, credentials: Credentials, since: int | None = None) -> Feed:
        """The customer's Subscription (``Batch/Subscription/{id}``), from ``since`` on (epoch
        seconds, as ``published-min``). NotReady when the custodian answers 202: it will POST a
        notification when the data is ready. Tokens renewed on the way are in ``credentials``."""
        if not credentials.account:
            raise AuthError("these credentials name no subscription", provider=self.slug)
        with tempfile.TemporaryFile() as tmp:
            got = self.download(
                credentials.account,
                tmp,
                credentials=credentials,
                params=self.profile.published(since),
            )
            if isinstance(got, Accepted):
                raise NotReady(
                    f"{self.profile.title or self.profile.name} accepted the request for "
                    f"{got.uri} (202): the data will come by notification",
                    provider=self.slug,
                    status=202,
                )
            tmp.seek(0)
            return parse(tmp, ParseOptions(warn=False))

    def disconnect(self, credentials: Credentials) -> str:
        """Revoke the Authorization (DELETE its URI with the client token); an authorization
        the custodian no longer knows (404) counts as revoked."""
        uri = credentials.extra.get("authorizationURI", "")
        where = self.profile.title or self.profile.name
        if not uri:
            return f"nothing to revoke at {where}: the connection names no authorization"
        try:
            self.request("DELETE", uri, token=self.client_token())
        except ProviderError as err:
            if err.status != 404:
                raise
            return f"the authorization was already gone at {where}"
        return f"revoked the authorization at {where}"

    def notified_accounts(self, body: bytes) -> list[str]:
        """The resource URIs of a notification's BatchList, normalised, each under the resource
        base with no query parameter but the profile's ``notification_params``; ValueError (a
        ParseError or an UnsafeURI) with the reason otherwise."""
        batch = parse(body, ParseOptions(warn=False, max_bytes=NOTIFICATION_LIMIT)).batch_list
        if batch is None:
            raise ValueError("the notification is not a BatchList")
        return list(dict.fromkeys(self.profile.notified(uri) for uri in batch.resources))


def _seconds(value: Any, default: float = 3600.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


__all__ = [
    "BUILT_IN",
    "Accepted",
    "Custodian",
    "CustodianProfile",
    "Downloaded",
    "Ready",
    "TokenKind",
    "UnsafeURI",
    "check_uri",
    "normalize_uri",
    "owner",
    "profile",
    "profiles",
    "token_kind",
    "within",
]
