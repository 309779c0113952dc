"""What every provider adapter shares: an injected ``requests`` session, the base URL, one
request loop that retries with backoff on 5xx and 429 (honouring Retry-After), paces requests,
follows no redirect off the origin it was sent to, and turns every refusal into an
:class:`espi.ProviderError`; and the contract every provider keeps, so that an
application can offer, connect, sync, disconnect and take notifications for any registered
provider without knowing its name.

The contract, in short (each name is documented where it is defined):

- a provider class registers itself (:func:`register`, a class decorator) under its ``slug``
  and declares :class:`Capabilities` (how a customer connects: :class:`ConnectKind`; what data
  it gives: :class:`DataKind`; whether it notifies) and its :class:`Setting` s;
- :meth:`Provider.from_settings` builds it from settings (:meth:`Provider.missing` says which
  required ones are not set);
- :meth:`Provider.fetch` ``(credentials, since) -> Feed`` and :meth:`Provider.disconnect`
  work on :class:`Credentials`, which a provider may renew in place;
- connecting: ``begin_connect``/``finish_connect`` (OAUTH, WIDGET: a :class:`Redirect`, then
  the callback's answer) or ``connect_form``/``connect`` (CREDENTIALS: :class:`Field` s, then
  the filled-in values; :class:`FieldError` names a refused input);
- ``notified_accounts(body)`` for providers that notify.

A method the capabilities do not include raises :class:`NotImplementedError`;
:func:`register` refuses a class whose methods and capabilities disagree.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Self, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from .. import model as m
from ..errors import AuthError, EspiError, NotReady, ProviderError, RateLimited, Unavailable

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: how much of an error answer's body is read when the request streams
ERROR_BODY_LIMIT = 64 << 10
DEFAULT_PORTS = {"http": 80, "https": 443}


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; an HTTP date is treated as 1 s)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port of a URL (default ports made explicit), as browsers compare them."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").rstrip("."), port or DEFAULT_PORTS.get(scheme)


class Pacer:
    """At most ``per_second`` requests a second from one client: each call waits until its
    turn (thread-safe; the turns are handed out in order)."""

    def __init__(
        self,
        per_second: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = 1.0 / per_second
        self.sleep = sleep
        self.clock = clock
        self.next = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            now = self.clock()
            wait = max(0.0, self.next - now)
            self.next = max(now, self.next) + self.interval
        if wait:
            self.sleep(wait)


def unpaced() -> None:
    """The throttle of a client without a rate limit."""


def read_bounded(resp: requests.Response, limit: int = ERROR_BODY_LIMIT) -> None:
    """Read at most ``limit`` bytes of a streamed answer's body and keep them as its content
    (an error answer's body is shown, never all of an endless one)."""
    try:
        resp._content = resp.raw.read(limit, decode_content=True) or b""
    except (OSError, urllib3.exceptions.HTTPError):
        resp._content = b""


def body_of(resp: requests.Response) -> Any:
    """The JSON body of an answer, or None when it is not JSON."""
    try:
        return resp.json()
    except ValueError:
        return None


# --------------------------------------------------------------------------- the contract's types


@dataclass(slots=True, kw_only=True)
class Credentials:
    """What the app keeps, encrypted, for one connection. A provider may renew tokens in place
    during fetch/disconnect; the app stores the credentials again after every call.

    ``account``: the customer's id at the source (Pelm user id, WattzOn profile id, Griddy user
    id; a custodian's subscription URI). ``expires_at``: epoch seconds, 0 when unknown.
    ``extra``: provider-specific strings (WattzOn's pending job ids, a custodian's
    authorization URI and scope, ...)."""

    account: str = ""
    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: int = 0
    extra: dict[str, str] = field(default_factory=dict)


class ConnectKind(StrEnum):
    """How a customer connects a provider."""

    OAUTH = "oauth"  # authorization-code redirect (a Green Button custodian)
    WIDGET = "widget"  # the provider's own page, then a code (Pelm Connect)
    CREDENTIALS = "credentials"  # a form the app shows (WattzOn, Griddy)
    NONE = "none"  # not connected by a customer (WattShift prices)


class DataKind(StrEnum):
    """What a provider's feeds carry."""

    INTERVALS = "intervals"
    BILLS = "bills"
    PRICES = "prices"
    CUSTOMER = "customer"


@dataclass(frozen=True, slots=True)
class Capabilities:
    connect: ConnectKind
    data: frozenset[DataKind]
    notifications: bool = False  # the provider can tell the app that data is ready


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting a provider is built from (:meth:`Provider.from_settings`)."""

    name: str
    required: bool = False
    secret: bool = False
    default: str = ""
    help: str = ""


@dataclass(frozen=True, slots=True)
class Field:
    """One input of a CREDENTIALS connect form. ``kind``: text | password | email | choice;
    ``choices``: (value, label) pairs of a choice; ``value``: what was filled in so far (never
    given back for a password)."""

    name: str
    label: str
    kind: str = "text"
    choices: tuple[tuple[str, str], ...] = ()
    value: str = ""
    help: str = ""


class FieldError(ProviderError):
    """A connect form's answer refused: ``field`` names the input, the message says why in
    words the customer can act on."""

    def __init__(self, field: str, message: str, **kwargs: Any) -> None:
        self.field = field
        super().__init__(message, **kwargs)


@dataclass(frozen=True, slots=True)
class Redirect:
    """The start of an OAUTH or WIDGET connect: where to send the customer's browser, and what
    the app keeps in the customer's session until the answer comes back."""

    url: str
    state: dict[str, str]


#: the methods each way of connecting needs (the others raise NotImplementedError)
CONNECT_METHODS: dict[ConnectKind, tuple[str, ...]] = {
    ConnectKind.OAUTH: ("begin_connect", "finish_connect"),
    ConnectKind.WIDGET: ("begin_connect", "finish_connect"),
    ConnectKind.CREDENTIALS: ("connect_form", "connect"),
    ConnectKind.NONE: (),
}


class Provider:
    """A data provider's API client. Subclasses set ``slug``, ``title`` and ``default_base``,
    add their authentication in :meth:`headers`, and map their error bodies in :meth:`error`.

    session: the ``requests.Session`` to send with (connection pooling, proxies, client
        certificates); a new one by default.
    retries: how often a 5xx, a 429 or a refused connection is tried again (non-idempotent
        requests are tried again only after a 429 or a refused connection).
    backoff: the first wait in seconds, doubled each time; a Retry-After header wins, up to
        ``max_wait`` seconds (a longer demand is raised as :class:`RateLimited` at once).
    cert: a client certificate for mutual TLS: ``(crt, key)`` paths, or one file with both.
    verify: the CA bundle the server's certificate must chain to (the system's by default).
        Sent with every request, so REQUESTS_CA_BUNDLE in the environment cannot override it.
    requests_per_second: the provider's rate limit, kept by a :class:`Pacer` of this client
        (None: no limit). ``throttle`` replaces it: a callable called before every request
        (retries and redirects included) that returns when the request may go, e.g. a rate
        limiter shared by several processes.
    max_redirects: same-origin redirects of a GET or HEAD followed per request (0: none). A
        redirect to another origin (scheme, host, port), of another method, or past the limit
        is a :class:`ProviderError` naming where it led, and nothing is fetched from there.
    """

    slug: ClassVar[str] = ""
    title: ClassVar[str] = ""
    default_base: ClassVar[str] = ""
    #: the provider's error codes that mean a particular error class (others go by status)
    codes: ClassVar[dict[str, type[ProviderError]]] = {}
    #: how a customer connects, what data comes, whether the provider notifies
    capabilities: ClassVar[Capabilities]
    #: what :meth:`from_settings` takes
    settings: ClassVar[tuple[Setting, ...]] = ()

    def __init__(
        self,
        *,
        base_url: str | None = None,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        cert: tuple[str, str] | str | None = None,
        verify: str | bool | None = None,
        requests_per_second: float | None = None,
        throttle: Callable[[], None] | None = None,
        max_redirects: int = 5,
    ) -> None:
        self.base_url = (base_url or self.default_base).rstrip("/")
        self.session = session or requests.Session()
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self.tls: dict[str, Any] = {"cert": cert} if cert else {}
        if verify is not None:
            self.tls["verify"] = verify
        if throttle is None:
            throttle = Pacer(requests_per_second) if requests_per_second else unpaced
        self.throttle = throttle
        self.max_redirects = max_redirects

    # ------------------------------------------------------------------ subclasses fill in

    def headers(self, token: str | None = None) -> dict[str, str]:
        """Authentication headers (``token``: a user's access token, where the API has one)."""
        return {}

    def error(self, resp: requests.Response) -> ProviderError:
        """The error an unsuccessful answer means. The default reads common JSON bodies
        (``{error_code | error, message | error_description}``)."""
        body = body_of(resp)
        message, code = resp.reason or "request failed", None
        if isinstance(body, dict):
            code = body.get("error_code") or body.get("error")
            message = str(body.get("message") or body.get("error_description") or code or message)
        return self.classify(resp, message, str(code) if code else None)

    def classify(
        self,
        resp: requests.Response,
        message: str,
        code: str | None,
        wait: float | None = None,
    ) -> ProviderError:
        """The error for an answer: the class the provider's ``code`` names in :attr:`codes`,
        else by status. ``wait``: seconds to wait that the body gave (else Retry-After)."""
        status = resp.status_code
        kind = self.codes.get(code or "")
        if kind is None:
            if status in (401, 403):
                kind = AuthError
            elif status == 429:
                kind = RateLimited
            elif status in (502, 503, 504):
                kind = Unavailable
            else:
                kind = ProviderError
        kw: dict[str, Any] = {
            "provider": self.slug,
            "status": status,
            "code": code,
            "body": resp.text,
        }
        if kind is RateLimited:
            if wait is None:
                wait = retry_after(resp.headers.get("Retry-After"))
            return RateLimited(message, retry_after=wait, **kw)
        return kind(message, **kw)

    # ------------------------------------------------------------------ the request loop

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        idempotent: bool | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request; retry what can be retried; raise a ProviderError for a refusal.

        ``stream=True``: the answer's body is left unread for the caller (who closes it); the
        body of an error answer is read up to :data:`ERROR_BODY_LIMIT` bytes, and every answer
        not returned is closed."""
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT
        headers = {**self.headers(token), **kwargs.pop("headers", {})}
        kwargs = {**self.tls, **kwargs, "allow_redirects": False}
        stream = bool(kwargs.get("stream"))
        url = self.url(path)
        attempt = redirects = 0
        while True:
            err: ProviderError
            refused = False
            self.throttle()
            try:
                resp = self.session.request(
                    method, url, headers=headers, timeout=self.timeout, **kwargs
                )
            except requests.exceptions.SSLError as exc:
                raise AuthError(
                    f"TLS with {url} failed (client certificate refused, or the server's not "
                    f"trusted): {exc}",
                    provider=self.slug,
                ) from None
            except requests.ConnectionError as exc:
                refused = not isinstance(exc, requests.ConnectTimeout | requests.ReadTimeout)
                err = Unavailable(f"no answer from {url}: {exc}", provider=self.slug)
            except requests.Timeout as exc:
                err = Unavailable(
                    f"no answer from {url} within {self.timeout} s: {exc}", provider=self.slug
                )
            else:
                if resp.is_redirect:
                    url = self.redirect(method, url, resp, redirects)
                    redirects += 1
                    continue
                if resp.status_code < 400:
                    return resp
                if stream:
                    read_bounded(resp)
                resp.close()
                err = self.error(resp)
            if attempt >= self.retries or not self.retryable(err, idempotent, refused):
                raise err
            wait = self.backoff * 2**attempt
            if isinstance(err, RateLimited) and err.retry_after is not None:
                if err.retry_after > self.max_wait:
                    raise err
                wait = err.retry_after
            self.sleep(wait)
            attempt += 1

    def redirect(self, method: str, url: str, resp: requests.Response, followed: int) -> str:
        """Where a redirect answer leads, when it may be followed; else a ProviderError."""
        resp.close()
        target = urljoin(url, resp.headers["Location"])
        why = ""
        if followed >= self.max_redirects:
            why = (
                f"more than {self.max_redirects} redirect(s)"
                if self.max_redirects
                else "this client follows no redirect"
            )
        elif origin(target) != origin(url):
            why = "it leads to another origin"
        elif method not in ("GET", "HEAD"):
            why = f"a {method} is not redirected"
        if why:
            raise ProviderError(
                f"{method} {url} was redirected to {target}: not followed, {why}",
                provider=self.slug,
                status=resp.status_code,
            )
        return target

    @staticmethod
    def retryable(err: ProviderError, idempotent: bool, refused: bool) -> bool:
        if isinstance(err, RateLimited) or (err.status is None and refused):
            return True  # not processed: safe to send again whatever the method
        if isinstance(err, AuthError | NotReady) or not idempotent:
            return False
        return err.status is None or err.status >= 500

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`request` and the answer's JSON."""
        resp = self.request(method, path, **kwargs)
        try:
            return resp.json()
        except ValueError:
            raise ProviderError(
                f"{method} {path}: the answer is not JSON ({resp.headers.get('Content-Type')})",
                provider=self.slug,
                status=resp.status_code,
                body=resp.text,
            ) from None

    # ------------------------------------------------------------------ the contract: building

    @classmethod
    def from_settings(cls, values: Mapping[str, Any], **kwargs: Any) -> Self:
        """Build from settings (names as in :attr:`settings`; unknown names -> ValueError
        listing the known ones; a required one missing -> ValueError naming it; empty values
        take the setting's default). ``kwargs`` go to ``__init__`` (session, timeout, retries,
        sleep, ...)."""
        known = [s.name for s in cls.settings]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(
                f"provider {cls.slug}: unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(known) or 'none'}"
            )
        missing = cls.missing(values)
        if missing:
            raise ValueError(f"provider {cls.slug}: setting(s) {', '.join(missing)} required")
        filled = {
            s.name: s.default if values.get(s.name) in (None, "") else str(values[s.name])
            for s in cls.settings
        }
        return cls(**cls.init_args(filled), **kwargs)

    @classmethod
    def missing(cls, values: Mapping[str, Any]) -> list[str]:
        """Required settings that are not set (the app offers only providers with none)."""
        return [s.name for s in cls.settings if s.required and values.get(s.name) in (None, "")]

    @classmethod
    def init_args(cls, values: dict[str, str]) -> dict[str, Any]:
        """:meth:`from_settings`' last step: the settings as ``__init__``'s keyword arguments
        (the default: every non-empty setting under its own name)."""
        return {k: v for k, v in values.items() if v}

    # ------------------------------------------------------------------ the contract: data

    def fetch(self, credentials: Credentials, since: int | None = None) -> m.Feed:
        """New data since ``since`` (epoch seconds; None: as much history as the provider
        gives, bounded by the provider's own default). NotReady while the provider is still
        gathering; AuthError when the credentials no longer work."""
        raise self.lacks("fetch")

    def disconnect(self, credentials: Credentials) -> str:
        """End the connection at the provider; say what was done, in words. Idempotent."""
        raise self.lacks("disconnect")

    # ------------------------------------------------------------------ the contract: connecting

    def begin_connect(self, account: str, redirect_uri: str) -> Redirect:
        """OAUTH / WIDGET: where to send the customer (``account``: the customer's id to use
        at the provider, where the provider takes one; ``redirect_uri``: the app's callback)."""
        raise self.lacks("begin_connect")

    def finish_connect(self, state: Mapping[str, str], answer: Mapping[str, str]) -> Credentials:
        """OAUTH / WIDGET: ``answer``: the callback's query parameters. AuthError when the
        customer declined or the answer does not match ``state``."""
        raise self.lacks("finish_connect")

    def connect_form(self, values: Mapping[str, str]) -> list[Field]:
        """CREDENTIALS: the inputs to show given what was filled in so far."""
        raise self.lacks("connect_form")

    def connect(self, values: Mapping[str, str]) -> Credentials:
        """CREDENTIALS: connect with the filled-in form. FieldError naming the input for bad
        input. Work the provider does afterwards is recorded in ``credentials.extra``;
        ``fetch`` raises NotReady until it has ended."""
        raise self.lacks("connect")

    def notified_accounts(self, body: bytes) -> list[str]:
        """The accounts a notification body names (the app syncs their connections);
        ValueError with the reason for a malformed body."""
        raise self.lacks("notified_accounts")

    def lacks(self, method: str) -> NotImplementedError:
        """The refusal of a method the provider's capabilities exclude."""
        name = self.title or type(self).__name__
        caps = getattr(type(self), "capabilities", None)
        if caps is None:
            return NotImplementedError(f"{name} has no {method}")
        notifies = "" if caps.notifications else " and sends no notifications"
        why = f"it connects by {caps.connect.value}{notifies}"
        return NotImplementedError(f"{name} has no {method} ({why})")


# --------------------------------------------------------------------------- the registry

REGISTRY: dict[str, type[Provider]] = {}
P = TypeVar("P", bound=type[Provider])


class UnknownProvider(EspiError, LookupError):
    pass


def overrides(cls: type[Provider], name: str) -> bool:
    """Whether ``cls`` implements a contract method itself (not the base's refusal)."""
    return getattr(cls, name) is not getattr(Provider, name)


def disagreements(cls: type[Provider]) -> list[str]:
    """Where a provider class's capabilities and methods disagree (none: it keeps the
    contract)."""
    caps = getattr(cls, "capabilities", None)
    if not isinstance(caps, Capabilities):
        return ["no Capabilities in capabilities"]
    out = [f"no {name}" for name in ("fetch", "disconnect") if not overrides(cls, name)]
    needed = CONNECT_METHODS[caps.connect]
    for name in sorted({n for names in CONNECT_METHODS.values() for n in names}):
        if overrides(cls, name) != (name in needed):
            has = "has" if overrides(cls, name) else "lacks"
            out.append(f"{has} {name} but connects by {caps.connect.value}")
    if overrides(cls, "notified_accounts") != caps.notifications:
        out.append(f"notifications={caps.notifications} but notified_accounts disagrees")
    names = [s.name for s in cls.settings]
    if len(set(names)) != len(names):
        out.append("settings named twice")
    return out


def register(cls: P) -> P:
    """Register a provider class under its slug (a class decorator). A class whose slug is
    taken by another class, or whose capabilities and methods disagree, is refused."""
    if not cls.slug or not cls.title:
        raise TypeError(f"{cls.__name__}: a provider needs a slug and a title")
    problems = disagreements(cls)
    if problems:
        raise TypeError(f"{cls.__name__} breaks the provider contract: {'; '.join(problems)}")
    if REGISTRY.get(cls.slug, cls) is not cls:
        raise ValueError(f"provider slug {cls.slug!r} is taken by {REGISTRY[cls.slug].__name__}")
    REGISTRY[cls.slug] = cls
    return cls


def get(slug: str) -> type[Provider]:
    """The provider class registered under ``slug``."""
    try:
        return REGISTRY[slug]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise UnknownProvider(f"no provider {slug!r}; known: {known}") from None


def registered() -> list[type[Provider]]:
    """Every registered provider class, by slug."""
    return [REGISTRY[slug] for slug in sorted(REGISTRY)]
