"""The JSON error body both apps answer with, in OAuth 2.0's shape (RFC 6749 section 5.2)."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from flask import Flask, Response, has_request_context, request
from flask.sessions import SecureCookieSessionInterface


def problem(
    status: int, error: str, description: str, headers: dict[str, str] | None = None
) -> Response:
    body = {"error": error, "error_description": description}
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def http_problem(err: Any) -> Response:
    """A werkzeug HTTPException (``abort(404, "...")``) as that body."""
    return problem(err.code, err.name.lower().replace(" ", "_"), err.description)


# --------------------------------------------------------------------------- security headers

#: pages load their own scripts, styles and images only, and are never framed
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def security_headers(response: Response, secure: bool, csp: str = CSP) -> Response:
    """The headers every answer gets (an ``after_request`` hook): a Content-Security-Policy
    without inline script, no framing, no MIME sniffing, no Referer to other sites (OAuth
    callbacks carry codes in their URLs), and HSTS when served over HTTPS."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", csp)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


class SessionOverHttps(SecureCookieSessionInterface):
    """Flask's signed-cookie session, its cookie ``Secure`` whenever the request came over
    HTTPS (or ``SESSION_COOKIE_SECURE`` says so)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (
            has_request_context() and request.is_secure
        )


# --------------------------------------------------------------------------- access logs

SECRETS = re.compile(
    r"((?:^|[?&])(?:code|state|token|access_token|refresh_token|key|next)=)[^&\s\"]*"
    r"|(/reset/)[^/?\s\"]+"  # a password-reset link's token
)


def redact(value: object) -> object:
    """A string with its secrets redacted (anything else as it is)."""
    if not isinstance(value, str):
        return value
    return SECRETS.sub(lambda m: (m.group(1) or m.group(2)) + "[redacted]", value)


class RedactSecrets(logging.Filter):
    """Keeps OAuth codes, states and tokens in query strings (``next=`` too, which can carry
    them), and password-reset tokens, out of the access log (werkzeug's and gunicorn's):
    ``/callback/pge?code=...`` is logged as ``/callback/pge?code=[redacted]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):  # gunicorn's access log: a mapping of its atoms
            record.args = {k: redact(a) for k, a in record.args.items()}
        elif record.args:
            record.args = tuple(map(redact, record.args))
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def redact_access_logs() -> None:
    for name in ("werkzeug", "gunicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
