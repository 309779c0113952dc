"""What stands before every API call: the client certificate (when mutual TLS is configured)
and PG&E-like rate limits."""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter

from appkit.http import problem
from appkit.tls import tls_context

__all__ = ["init_app", "tls_context"]

API_PREFIXES = (
    "/GreenButtonConnect/",
    "/datacustodian/oauth/v2/token",
    "/datacustodian/test/oauth/v2/token",
)


def caller() -> str:
    """Rate limits count per third party across the whole API (as PG&E's do): its token (or
    Basic credentials), else its address."""
    auth = request.headers.get("Authorization", "")
    return auth.partition(" ")[2][:64] or request.remote_addr or "unknown"


def init_app(app: Flask) -> None:
    limit = app.config["RATE_LIMIT"]
    limiter = Limiter(caller, app=app, application_limits=[limit] if limit else [], storage_uri="memory://",
                      strategy="moving-window",
                      headers_enabled=True)  # fmt: skip
    app.extensions["dc.limiter"] = limiter

    @limiter.request_filter
    def not_the_api() -> bool:
        return not request.path.startswith(API_PREFIXES)

    @app.before_request
    def client_certificate() -> Response | None:
        demanded = current_app.config["CLIENT_CA"] and request.path.startswith(API_PREFIXES)
        if demanded and not request.environ.get("SSL_CLIENT_CERT"):
            # PG&E's answer to a call without a valid client certificate
            return Response("Invalid Certificate", status=400, mimetype="text/plain")
        return None

    @app.errorhandler(429)
    def too_many(err: object) -> Response:
        retry = getattr(err, "retry_after", None)
        after = {"Retry-After": str(int(retry) if retry else 1)}
        return problem(429, "rate_limited", "too many requests", after)
