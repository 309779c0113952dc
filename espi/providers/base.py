"""What every provider adapter shares: an injected ``requests`` session, the base URL, and one
request loop that retries with backoff on 5xx and 429 (honouring Retry-After) and turns every
refusal into an :class:`espi.ProviderError`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

import requests

from ..errors import AuthError, NotReady, ProviderError, RateLimited, Unavailable

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; an HTTP date is treated as 1 s)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0


def body_of(resp: requests.Response) -> Any:
    """The JSON body of an answer, or None when it is not JSON."""
    try:
        return resp.json()
    except ValueError:
        return None


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
    """

    slug: ClassVar[str] = ""
    title: ClassVar[str] = ""
    default_base: ClassVar[str] = ""
    #: the provider's error codes that mean a particular error class (others go by status)
    codes: ClassVar[dict[str, type[ProviderError]]] = {}

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
        """Send a request; retry what can be retried; raise a ProviderError for a refusal."""
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT
        headers = {**self.headers(token), **kwargs.pop("headers", {})}
        kwargs = {**self.tls, **kwargs}
        url = self.url(path)
        attempt = 0
        while True:
            err: ProviderError
            refused = False
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
                if resp.status_code < 400:
                    return resp
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
